import { DockerScopeConflictError } from './errors.js';

const registry = globalThis as { [k: symbol]: Map<string, object> | undefined };
const slot = Symbol.for('nova-lfs.driver-docker.host-scopes');
/** Scopes held in this process, `daemon id + host id -> driver`; shared by every copy of the package. */
const held: Map<string, object> = registry[slot] ?? new Map<string, object>();
registry[slot] = held;

const key = (daemonId: string, hostId: string) => `${daemonId}\u0000${hostId}`;

/**
 * Claims the label scope `nova-lfs.host=<hostId>` on one dockerd for `owner`. Idempotent for the
 * same owner (a host report is read again on refresh).
 * @throws DockerScopeConflictError when another live driver of this process holds it.
 */
export function claimHostScope(daemonId: string, hostId: string, owner: object): void {
  const k = key(daemonId, hostId);
  const current = held.get(k);
  if (current && current !== owner) throw new DockerScopeConflictError(hostId, daemonId);
  held.set(k, owner);
}

/** Gives the scope back (driver closed). Idempotent; only the owner can release it. */
export function releaseHostScope(daemonId: string, hostId: string, owner: object): void {
  const k = key(daemonId, hostId);
  if (held.get(k) === owner) held.delete(k);
}
