import { randomUUID } from 'node:crypto';
import {
  DriverError,
  type Flavor,
  type Host,
  hostSchema,
  type Image,
  type PlacementRequest,
  type SpawnRequest,
} from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';

/** A host record for scheduler tests. */
export function host(
  id: string,
  o: Partial<Host> & { vcpus?: number; ramMb?: number; diskGb?: number } = {},
): Host {
  const { vcpus = 16, ramMb = 65_536, diskGb = 1000, ...rest } = o;
  return hostSchema.parse({
    id,
    name: id,
    hypervisorType: 'qemu',
    inventory: {
      VCPU: { total: vcpus, reserved: 0, allocationRatio: 1 },
      MEMORY_MB: { total: ramMb, reserved: 0, allocationRatio: 1 },
      DISK_GB: { total: diskGb, reserved: 0, allocationRatio: 1 },
    },
    ...rest,
  });
}

/** A flavor for scheduler tests. */
export function flavor(
  vcpus: number,
  ramMb: number,
  diskGb = 10,
  extraSpecs: Record<string, string> = {},
): Flavor {
  return { id: `f-${vcpus}-${ramMb}`, name: 'f', vcpus, ramMb, diskGb, resources: {}, extraSpecs };
}

/** An image for scheduler tests. */
export const image: Image = {
  id: 'img',
  name: 'img',
  diskFormat: 'qcow2',
  containerFormat: 'bare',
  sha256: '0'.repeat(64),
  sizeBytes: 1,
  properties: {},
};

/** A placement request for `count` instances. */
export function request(f: Flavor, count = 1, extra: Partial<PlacementRequest> = {}): PlacementRequest {
  return {
    requestId: randomUUID(),
    projectId: 'p1',
    instanceIds: Array.from({ length: count }, () => randomUUID()),
    flavor: f,
    image,
    hints: {},
    ...extra,
  };
}

/** A deterministic PRNG (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A fake host whose spawns wait at a gate until `open()` lets them through or `fail()` makes them
 * throw (later spawns then go through). `spawnsStarted(n)` resolves once `n` spawns have started.
 */
export class GatedDriver extends FakeDriver {
  private opened = false;
  private readonly waiting: Array<(fail: boolean) => void> = [];
  private readonly watchers: Array<{ n: number; resolve: () => void }> = [];
  started = 0;

  override async spawn(request: SpawnRequest): Promise<void> {
    this.started++;
    for (const w of this.watchers.splice(0)) {
      if (this.started >= w.n) w.resolve();
      else this.watchers.push(w);
    }
    if (!this.opened && (await new Promise<boolean>((r) => this.waiting.push(r)))) {
      throw new DriverError({ driver: this.kind, operation: 'spawn' }, 'gated spawn failed');
    }
    return super.spawn(request);
  }

  /** Resolves once `n` spawns have started. */
  spawnsStarted(n: number): Promise<void> {
    if (this.started >= n) return Promise.resolve();
    return new Promise((resolve) => this.watchers.push({ n, resolve }));
  }

  /** Lets waiting and later spawns through. */
  open(): void {
    this.opened = true;
    for (const r of this.waiting.splice(0)) r(false);
  }

  /** Makes the waiting spawns fail; later ones go through. */
  fail(): void {
    this.opened = true;
    for (const r of this.waiting.splice(0)) r(true);
  }
}
