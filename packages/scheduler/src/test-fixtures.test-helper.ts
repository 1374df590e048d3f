import { randomUUID } from 'node:crypto';
import { type Flavor, type Host, hostSchema, type Image, type PlacementRequest } from '@nova-lfs/core';

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
