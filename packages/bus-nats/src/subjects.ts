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

const CP_PREFIX = 'nova.cp';

/**
 * The subject of an agent's request to one control-plane process (the other direction of RPC,
 * e.g. an image read): `nova.cp.<controlPlaneId>.from.<hostId>.<method>`. The host token is the
 * caller's, so NATS permissions (`nova.cp.*.from.<hostId>.>` for the agent of `hostId`) decide
 * who may send as that host.
 */
export function controlPlaneRpcSubject(controlPlaneId: string, hostId: string, method: string): string {
  return `${CP_PREFIX}.${controlPlaneId}.from.${hostId}.${method}`;
}

/** Every agent request to one control-plane process: `nova.cp.<controlPlaneId>.from.*.>`. */
export function controlPlaneRpcWildcard(controlPlaneId: string): string {
  return `${CP_PREFIX}.${controlPlaneId}.from.*.>`;
}

/** What one agent may send to any control-plane process: `nova.cp.*.from.<hostId>.>`. */
export function controlPlaneRequestsOf(hostId: string): string {
  return `${CP_PREFIX}.*.from.${hostId}.>`;
}

/** The calling host and the method of a `nova.cp.<id>.from.<hostId>.<method>` subject, or undefined. */
export function parseControlPlaneRpcSubject(subject: string): { hostId: string; method: string } | undefined {
  const parts = subject.split('.');
  if (parts[0] !== 'nova' || parts[1] !== 'cp' || parts[3] !== 'from' || !parts[4] || parts.length < 6)
    return undefined;
  return { hostId: parts[4], method: parts.slice(5).join('.') };
}
