import type { HostState } from './host-state.js';

const BUCKETS = 48;

/** Bucket of a free amount: 0 for none, else `1 + floor(log2(free))`. */
export function bucketOf(free: number): number {
  return free < 1 ? 0 : Math.min(BUCKETS - 1, 1 + Math.floor(Math.log2(free)));
}

class ZoneBuckets {
  readonly buckets: HostState[][] = Array.from({ length: BUCKETS }, () => []);
  size = 0;
}

/**
 * The host index of one scheduling domain (cell): hosts partitioned by availability zone, and
 * within a zone bucketed by free memory (powers of two). A decision visits only the zone asked for
 * and only buckets that can hold the request's memory, in a random order, and stops as soon as the
 * sampler has enough feasible candidates — so it does not scan every host. Moving a host between
 * buckets when its usage changes is O(1).
 */
export class HostIndex {
  readonly hosts = new Map<string, HostState>();
  private readonly zones = new Map<string, ZoneBuckets>();
  /** Sum of free memory (MiB) over the cell's hosts; used to order cells. */
  freeMemory = 0;

  constructor(readonly cell: string) {}

  get size(): number {
    return this.hosts.size;
  }

  hasZone(zone: string): boolean {
    return (this.zones.get(zone)?.size ?? 0) > 0;
  }

  /** Number of hosts in a zone (all zones when undefined). */
  zoneSize(zone: string | undefined): number {
    return zone === undefined ? this.hosts.size : (this.zones.get(zone)?.size ?? 0);
  }

  /** Adds a host or re-files it after its record changed. */
  upsert(state: HostState): void {
    if (this.hosts.has(state.id)) this.detach(state);
    this.hosts.set(state.id, state);
    this.attach(state);
  }

  remove(state: HostState): void {
    if (!this.hosts.has(state.id)) return;
    this.detach(state);
    this.hosts.delete(state.id);
  }

  /** Re-files a host after its usage changed. */
  reposition(state: HostState): void {
    const zone = this.zones.get(state.host.availabilityZone);
    if (!zone) return;
    this.freeMemory -= state.bucketFree;
    state.bucketFree = Math.max(0, state.freeMemory);
    this.freeMemory += state.bucketFree;
    const b = bucketOf(state.bucketFree);
    if (b === state.bucket) return;
    this.take(zone, state);
    this.put(zone, state, b);
  }

  /**
   * Visits candidate hosts that may hold `minFreeMemory` MiB, in `zone` (all zones when
   * undefined), in a random order, until `visit` returns true.
   */
  forEachCandidate(
    zone: string | undefined,
    minFreeMemory: number,
    random: () => number,
    visit: (host: HostState) => boolean,
  ): void {
    if (zone !== undefined) {
      const z = this.zones.get(zone);
      if (z) this.visitZone(z, minFreeMemory, random, visit);
      return;
    }
    const zones = [...this.zones.values()];
    const start = Math.floor(random() * zones.length);
    for (let i = 0; i < zones.length; i++) {
      if (this.visitZone(zones[(start + i) % zones.length]!, minFreeMemory, random, visit)) return;
    }
  }

  private visitZone(
    z: ZoneBuckets,
    minFreeMemory: number,
    random: () => number,
    visit: (host: HostState) => boolean,
  ): boolean {
    const first = bucketOf(minFreeMemory);
    const span = BUCKETS - first;
    const start = Math.floor(random() * span);
    for (let i = 0; i < span; i++) {
      const bucket = z.buckets[first + ((start + i) % span)]!;
      const n = bucket.length;
      if (n === 0) continue;
      const offset = Math.floor(random() * n);
      for (let j = offset; j < n; j++) if (visit(bucket[j]!)) return true;
      for (let j = 0; j < offset; j++) if (visit(bucket[j]!)) return true;
    }
    return false;
  }

  private attach(state: HostState): void {
    let zone = this.zones.get(state.host.availabilityZone);
    if (!zone) {
      zone = new ZoneBuckets();
      this.zones.set(state.host.availabilityZone, zone);
    }
    zone.size++;
    state.bucketFree = Math.max(0, state.freeMemory);
    this.freeMemory += state.bucketFree;
    this.put(zone, state, bucketOf(state.bucketFree));
  }

  private detach(state: HostState): void {
    const old = this.hosts.get(state.id) ?? state;
    const zone = this.zones.get(old.zoneFiled);
    if (!zone) return;
    this.take(zone, old);
    zone.size--;
    this.freeMemory -= old.bucketFree;
    if (zone.size === 0) this.zones.delete(old.zoneFiled);
  }

  private put(zone: ZoneBuckets, state: HostState, b: number): void {
    const bucket = zone.buckets[b]!;
    state.bucket = b;
    state.bucketPos = bucket.length;
    state.zoneFiled = state.host.availabilityZone;
    bucket.push(state);
  }

  private take(zone: ZoneBuckets, state: HostState): void {
    const bucket = zone.buckets[state.bucket];
    if (!bucket || bucket[state.bucketPos] !== state) return;
    const last = bucket.pop()!;
    if (last !== state) {
      bucket[state.bucketPos] = last;
      last.bucketPos = state.bucketPos;
    }
    state.bucket = -1;
    state.bucketPos = -1;
  }
}
