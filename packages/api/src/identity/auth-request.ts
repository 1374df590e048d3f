import { z } from 'zod';

/** Longest password accepted (Keystone's `max_password_length` default). */
export const maxPasswordLength = 4096;

/**
 * A name or id as identity requests carry it: 1-255 characters, no NUL or other control
 * characters (a hostile value is a 400 naming the field, never a lookup).
 */
export function identityName(max = 255) {
  return z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !/[\p{Cc}\p{Cs}]/u.test(s), 'must not contain control characters');
}

/** A password: any characters but NUL, at most {@link maxPasswordLength}. */
export const passwordText = z
  .string()
  .max(maxPasswordLength)
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL');

const domainRef = z
  .object({ id: identityName(64).optional(), name: identityName().optional() })
  .refine((d) => d.id !== undefined || d.name !== undefined, 'needs an id or a name');

const userRef = z
  .object({
    id: identityName().optional(),
    name: identityName().optional(),
    domain: domainRef.optional(),
    password: passwordText,
  })
  .refine((u) => u.id !== undefined || (u.name !== undefined && u.domain !== undefined), {
    message: 'needs an id, or a name and a domain',
  });

const projectRef = z
  .object({
    id: identityName(64).optional(),
    name: identityName(64).optional(),
    domain: domainRef.optional(),
  })
  .refine((p) => p.id !== undefined || (p.name !== undefined && p.domain !== undefined), {
    message: 'needs an id, or a name and a domain',
  });

/** Keystone's `auth` object of `POST /v3/auth/tokens` (password and token methods). */
export const authRequestSchema = z.object({
  identity: z.object({
    methods: z
      .array(z.enum(['password', 'token']))
      .min(1)
      .max(2),
    password: z.object({ user: userRef }).optional(),
    token: z.object({ id: z.string().min(1).max(2048) }).optional(),
  }),
  scope: z
    .union([
      z.literal('unscoped'),
      z
        .object({
          project: projectRef.optional(),
          domain: domainRef.optional(),
          system: z.object({ all: z.literal(true) }).optional(),
        })
        .refine((s) => [s.project, s.domain, s.system].filter((x) => x !== undefined).length === 1, {
          message: 'needs exactly one of project, domain and system',
        }),
    ])
    .optional(),
});

/** The parsed `auth` object of a token request. */
export type AuthRequest = z.output<typeof authRequestSchema>;
/** A domain reference of a token request: by id or by name. */
export type DomainRef = z.output<typeof domainRef>;
