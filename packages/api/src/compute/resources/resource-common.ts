import { createHash } from 'node:crypto';
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

const namespace = Buffer.from('6ba7b8109dad11d180b400c04fd430c8', 'hex'); // RFC 4122 URL namespace

/** A name-based UUID (version 5, SHA-1): the same name always gives the same id. */
export function uuidV5(name: string): string {
  const hash = createHash('sha1').update(namespace).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const h = hash.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Nova's truthy query values (`True`, `true`, `1`, `yes`, `on`). */
export function isTruthy(value: string | undefined): boolean {
  return value !== undefined && /^(1|t|true|y|yes|on)$/i.test(value.trim());
}

/** Nova's timestamps: `2026-12-02T03:47:32.000000`. */
export function novaTime(ms: number = Date.now()): string {
  return new Date(ms)
    .toISOString()
    .replace('Z', '000')
    .replace(/\.(\d{3})000$/, '.$1000');
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

/** A query value that appears at most once (repeated keys are refused). */
export const oneQueryValue = z.string().max(1024);

/** Parses a non-negative integer query value. */
export const intQuery = z
  .string()
  .regex(/^\d{1,9}$/, 'must be a non-negative integer')
  .transform((s) => Number(s));

/** A JSON (SQL text) value read back. */
export function parseJson<T>(text: string, fallback: T): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}
