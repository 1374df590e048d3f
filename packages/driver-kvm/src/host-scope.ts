import { KvmScopeConflictError } from './errors.js';

const registry = globalThis as { [k: symbol]: Map<string, object> | undefined };
const slot = Symbol.for('nova-lfs.driver-kvm.host-scopes');
/** Scopes held in this process, `libvirtd + host id -> driver`; shared by every copy of the package. */
const held: Map<string, object> = registry[slot] ?? new Map<string, object>();
registry[slot] = held;

/**
 * Claims the metadata scope `hostId` on one libvirtd (named by its URI and hostname) for `owner`.
 * Idempotent for the same owner (a host report is read again on refresh).
 * @throws KvmScopeConflictError when another live driver of this process holds it.
 */
export function claimHostScope(daemon: string, hostId: string, owner: object): void {
  const k = `${daemon}\u0000${hostId}`;
  const current = held.get(k);
  if (current && current !== owner) throw new KvmScopeConflictError(hostId, daemon);
  held.set(k, owner);
}

/** Gives the scope back (driver closed). Idempotent; only the owner can release it. */
export function releaseHostScope(daemon: string, hostId: string, owner: object): void {
  const k = `${daemon}\u0000${hostId}`;
  if (held.get(k) === owner) held.delete(k);
}
