import { type ComputeOptions, createCompute } from '../compose/create-compute.js';
import type { ComputeEngine } from '../engine/compute-engine.js';
import type { HostBinding } from '../engine/host-registry.js';
import type { QuotaLimits } from '../model/quota.js';
import { FakeDriver, type FakeDriverOptions } from './fake-driver.js';
import { FirstFitScheduler } from './first-fit-scheduler.js';

/** An engine over fake hosts, for tests of code built on the engine. */
export interface FakeCloud {
  readonly compute: ComputeEngine;
  readonly drivers: FakeDriver[];
  readonly scheduler: FirstFitScheduler;
  /** A valid create request for `m1.small` / `cirros` in project `p1`; override fields freely. */
  request(overrides?: Record<string, unknown>): {
    name: string;
    projectId: string;
    userId: string;
    flavorId: string;
    imageId: string;
  } & Record<string, unknown>;
}

/** Options of {@link createFakeCloud}. */
export interface FakeCloudOptions {
  readonly hosts?: number;
  readonly driver?: FakeDriverOptions | ((index: number) => FakeDriverOptions);
  readonly quota?: QuotaLimits;
  readonly binding?: (index: number) => Partial<HostBinding>;
  /** Options passed on to `createCompute` (e.g. `engine`, `clock`, or `storage` instead of memory). */
  readonly core?: Partial<ComputeOptions>;
}

/**
 * Builds an engine with `hosts` FAKE hosts (`host-0`, `host-1`, ...; 16 vCPU / 64 GiB each unless
 * set), flavors `m1.small` (1 vCPU, 2 GiB) and `m1.large` (8 vCPU, 16 GiB), and an image `cirros`.
 */
export async function createFakeCloud(options: FakeCloudOptions = {}): Promise<FakeCloud> {
  const drivers: FakeDriver[] = [];
  const count = options.hosts ?? 2;
  for (let i = 0; i < count; i++) {
    const o = typeof options.driver === 'function' ? options.driver(i) : options.driver;
    drivers.push(new FakeDriver({ hostname: `host-${i}`, ...o }));
  }
  let scheduler: FirstFitScheduler | undefined;
  const compute = await createCompute({
    storage: 'memory',
    scheduler: ({ claims }) => {
      scheduler = new FirstFitScheduler(claims);
      return scheduler;
    },
    flavors: [
      { id: 'm1.small', vcpus: 1, ramMb: 2048, diskGb: 10 },
      { id: 'm1.large', vcpus: 8, ramMb: 16_384, diskGb: 80 },
    ],
    quota: { defaults: options.quota ?? { instances: 100, cores: 400, ramMb: 1_000_000 } },
    hosts: drivers.map((driver, i) => ({ id: `host-${i}`, driver, ...options.binding?.(i) })),
    ...options.core,
  });
  await compute.images.register(
    { id: 'cirros', name: 'cirros', diskFormat: 'qcow2', sha256: 'a'.repeat(64), sizeBytes: 1 },
    { kind: 'bytes', bytes: new Uint8Array([1]) },
  );
  return {
    compute,
    drivers,
    scheduler: scheduler!,
    request: (overrides = {}) => ({
      name: 'vm',
      projectId: 'p1',
      userId: 'u1',
      flavorId: 'm1.small',
      imageId: 'cirros',
      ...overrides,
    }),
  };
}
