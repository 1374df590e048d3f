import { z } from 'zod';

/**
 * A host id (or control-plane id) as the bus carries it: 1-64 letters, digits, `_` and `-`,
 * starting with a letter or digit. Stricter than core's ids because it is one NATS subject token
 * and one KV key: a `.` would split the subject, `*`/`>` would be wildcards.
 */
export const busIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'must be letters, digits, _ and - starting with a letter or digit');

/** An RPC method or event type name: dot-separated tokens of letters, digits, `_` and `-`. */
export const busNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be dot-separated tokens of letters, digits, _ and -');

const PREFIX = 'nova.agent';

/** Every subject of one host: what its agent's NATS permissions allow (`nova.agent.<hostId>.>`). */
export function hostSubjects(hostId: string): string {
  return `${PREFIX}.${hostId}.>`;
}

/** The RPC subject of `method` on `hostId`: `nova.agent.<hostId>.rpc.<method>`. */
export function rpcSubject(hostId: string, method: string): string {
  return `${PREFIX}.${hostId}.rpc.${method}`;
}

/** The wildcard an agent serves its RPCs on: `nova.agent.<hostId>.rpc.>`. */
export function rpcWildcard(hostId: string): string {
  return `${PREFIX}.${hostId}.rpc.>`;
}

/** The event subject of `hostId` (`*` for every host): `nova.agent.<hostId>.events`. */
export function eventsSubject(hostId: string | '*'): string {
  return `${PREFIX}.${hostId}.events`;
}

/** The host token of a `nova.agent.<hostId>.…` subject, or undefined for another subject. */
export function hostOfSubject(subject: string): string | undefined {
  const parts = subject.split('.');
  return parts[0] === 'nova' && parts[1] === 'agent' && parts[2] ? parts[2] : undefined;
}

/** The method of an RPC subject `nova.agent.<hostId>.rpc.<method>`, or undefined. */
export function methodOfSubject(subject: string): string | undefined {
  const parts = subject.split('.');
  return parts[3] === 'rpc' && parts.length > 4 ? parts.slice(4).join('.') : undefined;
}
