import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { ApiFault } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import type { AuthContext } from '../../http/auth-context.js';
import { type Microversion, negotiateMicroversion, sendMicroversion } from '../microversion.js';
import type { ComputeResourceTables } from './resource-tables.js';

/** The API database viewed with the compute resource tables. */
export function resourceDb(services: ApiServices): Kysely<ComputeResourceTables> {
  return services.db.withTables<ComputeResourceTables>() as unknown as Kysely<ComputeResourceTables>;
}

/** Negotiates the microversion of a compute request and echoes it in the answer's headers. */
export function beginCompute(request: FastifyRequest, reply: FastifyReply): Microversion {
  const v = negotiateMicroversion(request.headers);
  sendMicroversion(reply, v);
  return v;
}

/** The caller of an authenticated route (the HTTP layer guarantees it). */
export function callerOf(auth: AuthContext | null): AuthContext {
  if (!auth) throw new ApiFault(401, 'The request you have made requires authentication.');
  return auth;
}

/**
 * A text field Nova validates as a name: printable, no NUL or control characters, no leading or
 * trailing blanks, at most `max` characters.
 */
export function nameText(max = 255) {
  return z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !/[\p{Cc}\p{Cs}]/u.test(s), 'must not contain control characters')
    .refine((s) => s.trim() === s, 'must not have leading or trailing blanks');
}

/** Parses a non-negative integer query value. */
export const intQuery = z
  .string()
  .regex(/^\d{1,9}$/, 'must be a non-negative integer')
  .transform((s) => Number(s));

/** A description as Nova validates it: at most 255 characters without control characters, or null. */
export const descriptionText = z
  .string()
  .max(255)
  .refine((s) => !/[\p{Cc}]/u.test(s), 'must not contain control characters')
  .nullable();
