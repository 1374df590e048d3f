import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import { provideValue } from '../di/token.js';
import {
  actionStoreToken,
  claimStoreToken,
  clockToken,
  engineOptionsToken,
  flavorStoreToken,
  hostRegistryToken,
  hostStoreToken,
  imageServiceToken,
  instanceStoreToken,
  networkAdapterToken,
  quotaToken,
  schedulerToken,
  serverGroupStoreToken,
  volumeAdapterToken,
} from '../di/tokens.js';
import { defaultEngineOptions, type EngineOptions } from '../engine/engine-options.js';
import { HostRegistry } from '../engine/host-registry.js';
import { noNetworkAdapter, noVolumeAdapter } from '../engine/noop-adapters.js';
import { ConfigurationError } from '../errors.js';
import { LocalImageService } from '../image/local-image-service.js';
import { type Flavor, flavorSchema } from '../model/flavor.js';
import type { Host } from '../model/host.js';
import { defaultQuotaLimits, type QuotaLimits } from '../model/quota.js';
import { parseInput } from '../model/validation.js';
import { type Clock, systemClock } from '../ports/clock.js';
import type { ImageService } from '../ports/image-service.js';
import type { NetworkAdapter } from '../ports/network.js';
import type { QuotaEngine } from '../ports/quota.js';
import type { Scheduler } from '../ports/scheduler.js';
import type { ClaimStore, CoreStores, HostStore } from '../ports/stores.js';
import type { VolumeAdapter } from '../ports/volume.js';
import { CountingQuotaEngine } from '../quota/counting-quota-engine.js';
import { MemoryActionStore } from '../store/memory-action-store.js';
import { MemoryClaimStore } from '../store/memory-claim-store.js';
import { MemoryFlavorStore } from '../store/memory-flavor-store.js';
import { MemoryHostStore } from '../store/memory-host-store.js';
import { MemoryInstanceStore } from '../store/memory-instance-store.js';
import { MemoryServerGroupStore } from '../store/memory-server-group-store.js';

/** What a scheduler factory is given. */
export interface SchedulerDeps {
  readonly claims: ClaimStore;
  readonly hosts: HostStore;
}

/** Options of {@link registerCore}. */
export interface CoreOptions {
  /**
   * The scheduler, or a factory given the claim and host stores. Default: `@nova-lfs/scheduler`
   * (spread profile, claims in the claim store) when that package is installed.
   */
  readonly scheduler?: Scheduler | ((deps: SchedulerDeps) => Scheduler);
  readonly stores?: CoreStores;
  /** Flavors to offer (validated). */
  readonly flavors?: ReadonlyArray<Partial<Flavor> & Pick<Flavor, 'id' | 'vcpus' | 'ramMb'>>;
  /** Image service; default a {@link LocalImageService} in `imageDir`. */
  readonly images?: ImageService;
  /** Directory of the default image service (default `<tmp>/nova-lfs-images`). */
  readonly imageDir?: string;
  /** Quota engine, or limits for the default counting engine. */
  readonly quota?:
    | QuotaEngine
    | { defaults?: QuotaLimits; projects?: Readonly<Record<string, Partial<QuotaLimits>>> };
  readonly network?: NetworkAdapter;
  readonly volumes?: VolumeAdapter;
  readonly clock?: Clock;
  readonly engine?: Partial<EngineOptions>;
}

/** Whether the `quota` option is an engine (rather than limits for the default one). */
export function isQuotaEngine(q: CoreOptions['quota']): q is QuotaEngine {
  return typeof (q as QuotaEngine | undefined)?.reserve === 'function';
}

/**
 * Registers the core's services in a container: stores (memory by default), quota, image
 * service, adapters, clock, host registry, engine options and the given scheduler. Resolve
 * `ComputeEngine` from the container afterwards.
 */
export async function registerCore(container: DependencyContainer, options: CoreOptions): Promise<void> {
  const s = options.stores ?? {};
  const claims = s.claims ?? new MemoryClaimStore();
  const hosts = s.hosts ?? new MemoryHostStore();
  const flavors = s.flavors ?? new MemoryFlavorStore();
  for (const f of options.flavors ?? []) {
    const flavor = parseInput(flavorSchema, { name: f.id, ...f });
    if (!(await flavors.get(flavor.id))) await flavors.add(flavor);
  }
  let quota: QuotaEngine;
  if (isQuotaEngine(options.quota)) quota = options.quota;
  else {
    const q = options.quota;
    quota = new CountingQuotaEngine(q?.defaults ?? defaultQuotaLimits);
    for (const [project, limits] of Object.entries(q?.projects ?? {})) await quota.setLimits(project, limits);
  }
  const factory = options.scheduler ?? (await defaultSchedulerFactory());
  const scheduler = typeof factory === 'function' ? factory({ claims, hosts }) : factory;
  provideValue(container, instanceStoreToken, s.instances ?? new MemoryInstanceStore());
  provideValue(container, hostStoreToken, hosts);
  provideValue(container, claimStoreToken, claims);
  provideValue(container, actionStoreToken, s.actions ?? new MemoryActionStore());
  provideValue(container, flavorStoreToken, flavors);
  provideValue(container, serverGroupStoreToken, s.groups ?? new MemoryServerGroupStore());
  provideValue(container, schedulerToken, scheduler);
  provideValue(container, quotaToken, quota);
  provideValue(
    container,
    imageServiceToken,
    options.images ?? new LocalImageService(options.imageDir ?? join(tmpdir(), 'nova-lfs-images')),
  );
  provideValue(container, networkAdapterToken, options.network ?? noNetworkAdapter);
  provideValue(container, volumeAdapterToken, options.volumes ?? noVolumeAdapter);
  provideValue(container, clockToken, options.clock ?? systemClock);
  provideValue(container, hostRegistryToken, new HostRegistry());
  provideValue(container, engineOptionsToken, { ...defaultEngineOptions, ...options.engine });
}

/** Hosts known to a host store (helper for scheduler factories). */
export type { CoreStores, Host };

const SCHEDULER_PACKAGE = '@nova-lfs/scheduler';

/** Loads `@nova-lfs/scheduler`'s factory; core does not depend on it, so it is looked up at run time. */
async function defaultSchedulerFactory(): Promise<(deps: SchedulerDeps) => Scheduler> {
  let mod: { schedulerFactory?: () => (deps: SchedulerDeps) => Scheduler };
  try {
    mod = (await import(SCHEDULER_PACKAGE)) as typeof mod;
  } catch (e) {
    throw new ConfigurationError(
      'scheduler',
      `no scheduler given and ${SCHEDULER_PACKAGE} cannot be loaded: install it or pass options.scheduler`,
      { cause: e },
    );
  }
  if (typeof mod.schedulerFactory !== 'function') {
    throw new ConfigurationError('scheduler', `${SCHEDULER_PACKAGE} does not export schedulerFactory`);
  }
  return mod.schedulerFactory();
}
