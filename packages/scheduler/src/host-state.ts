import { capacityOf, type Host } from '@nova-lfs/core';

/** Aggregate metadata key listing the projects allowed on the aggregate's hosts (comma-separated). */
export const TENANT_METADATA_KEY = 'filter_tenant_id';

/**
 * The scheduler's live view of one host: its record, capacity and usage per resource class,
 * instances placed, builds in flight and recent build failures. Usage changes only through
 * {@link HostState.add} so that the host index stays current.
 */
export class HostState {
  /** Schedulable capacity per resource class: `(total - reserved) * allocationRatio`. */
  capacity: Record<string, number> = {};
  /** Claimed amounts per resource class. */
  readonly used: Record<string, number> = {};
  /** Claims placed on the host, by instance id. */
  readonly instances = new Map<string, string>();
  /** Claim ids whose build has not finished yet. */
  readonly inFlight = new Set<string>();
  /** Timestamps (ms) of recent build failures. */
  failures: number[] = [];
  /** Position in the host index (maintained by the index). */
  bucket = -1;
  bucketPos = -1;
  /** Free memory when last filed, and the zone it was filed under (maintained by the index). */
  bucketFree = 0;
  zoneFiled = '';
  /** Traits as a set, for O(1) trait checks. */
  traits: ReadonlySet<string> = new Set();
  capabilities: ReadonlySet<string> = new Set();
  /** Enabled and up (precomputed: filters run for many hosts per decision). */
  schedulable = true;
  /** Projects allowed by tenant-isolation aggregates (union), `null` when unrestricted. */
  allowedProjects: ReadonlySet<string> | null = null;
  /** Free amounts of the standard classes, kept in step with `used` and `capacity`. */
  freeVcpu = 0;
  /** `instances.size` and `inFlight.size` as plain numbers (kept by the scheduler). */
  instanceCount = 0;
  inFlightCount = 0;
  freeMemory = 0;
  freeDisk = 0;

  constructor(public host: Host) {
    this.update(host);
  }

  /** Replaces the host record (inventory, traits, flags) keeping usage. */
  update(host: Host): void {
    this.host = host;
    const capacity: Record<string, number> = {};
    for (const [rc, inv] of Object.entries(host.inventory)) capacity[rc] = capacityOf(inv);
    this.capacity = capacity;
    this.traits = new Set(host.traits);
    this.capabilities = new Set(host.capabilities);
    this.schedulable = host.enabled && host.up;
    const tenants = host.aggregates.flatMap((a) =>
      a.metadata[TENANT_METADATA_KEY] === undefined
        ? []
        : a.metadata[TENANT_METADATA_KEY].split(',').map((t) => t.trim()),
    );
    this.allowedProjects = host.aggregates.some((a) => a.metadata[TENANT_METADATA_KEY] !== undefined)
      ? new Set(tenants)
      : null;
    this.refreshFree();
  }

  private refreshFree(): void {
    this.freeVcpu = this.free('VCPU');
    this.freeMemory = this.free('MEMORY_MB');
    this.freeDisk = this.free('DISK_GB');
  }

  get id(): string {
    return this.host.id;
  }

  /** Free amount of a resource class (negative when over-committed by an inventory change). */
  free(rc: string): number {
    return (this.capacity[rc] ?? 0) - (this.used[rc] ?? 0);
  }

  /** Adds (`sign` 1) or removes (`sign` -1) amounts. */
  add(amounts: Readonly<Record<string, number>>, sign: 1 | -1): void {
    for (const rc in amounts) this.used[rc] = (this.used[rc] ?? 0) + sign * (amounts[rc] ?? 0);
    this.refreshFree();
  }

  /** Copies the sizes of `instances` and `inFlight` into the numeric counters. */
  syncCounts(): void {
    this.instanceCount = this.instances.size;
    this.inFlightCount = this.inFlight.size;
  }

  /** Clears usage (restore). */
  reset(): void {
    for (const rc of Object.keys(this.used)) this.used[rc] = 0;
    this.instances.clear();
    this.inFlight.clear();
    this.syncCounts();
    this.refreshFree();
  }

  /** Fraction of a resource class in use, 0..1 (0 when the host has none). */
  usedFraction(rc: string): number {
    const cap = this.capacity[rc] ?? 0;
    return cap > 0 ? (this.used[rc] ?? 0) / cap : 0;
  }

  /** Build failures within the last `windowMs`. Prunes older ones. */
  recentFailures(now: number, windowMs: number): number {
    if (this.failures.length === 0) return 0;
    const cutoff = now - windowMs;
    if ((this.failures[0] ?? 0) < cutoff) this.failures = this.failures.filter((t) => t >= cutoff);
    return this.failures.length;
  }
}
