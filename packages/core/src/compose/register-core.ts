import type { DependencyContainer } from 'tsyringe';
import { provideValue } from '../di/token.js';
import {
  actionStoreToken,
  claimStoreToken,
  clockToken,
  engineOptionsToken,
  eventLogToken,
  flavorStoreToken,
  hostRegistryToken,
  hostStoreToken,
  imageServiceToken,
  instanceStoreToken,
  leaseStoreToken,
  migrationStoreToken,
  networkAdapterToken,
  quotaToken,
  schedulerToken,
  serverGroupStoreToken,
  unitOfWorkToken,
  volumeAdapterToken,
} from '../di/tokens.js';
import { defaultEngineOptions, type EngineOptions } from '../engine/engine-options.js';
import { HostRegistry } from '../engine/host-registry.js';
import { noNetworkAdapter, noVolumeAdapter } from '../engine/noop-adapters.js';
import { ConfigurationError, ErrorCode, isNovaError } from '../errors.js';
import { defaultImageService } from '../image/default-image-service.js';
import { type Flavor, flavorSchema } from '../model/flavor.js';
import type { Host } from '../model/host.js';
import { defaultQuotaLimits, type QuotaLimits } from '../model/quota.js';
import { parseInput } from '../model/validation.js';
import { type Clock, systemClock } from '../ports/clock.js';
import type { ImageService } from '../ports/image-service.js';
import type { NetworkAdapter } from '../ports/network.js';
import type { QuotaEngine } from '../ports/quota.js';
import type { Scheduler } from '../ports/scheduler.js';
import type {
  ActionStore,
  ClaimStore,
  CoreStores,
  HostStore,
  InstanceStore,
  ServerGroupStore,
} from '../ports/stores.js';
import type { EventLog, UnitOfWork } from '../ports/unit-of-work.js';
import type { VolumeAdapter } from '../ports/volume.js';
import { CountingQuotaEngine } from '../quota/counting-quota-engine.js';
import { MemoryActionStore } from '../store/memory-action-store.js';
import { MemoryClaimStore } from '../store/memory-claim-store.js';
import { MemoryEventLog } from '../store/memory-event-log.js';
import { MemoryFlavorStore } from '../store/memory-flavor-store.js';
import { MemoryHostStore } from '../store/memory-host-store.js';
import { MemoryInstanceStore } from '../store/memory-instance-store.js';
import { MemoryLeaseStore } from '../store/memory-lease-store.js';
import { MemoryMigrationStore } from '../store/memory-migration-store.js';
import { MemoryServerGroupStore } from '../store/memory-server-group-store.js';
import { MemoryUnitOfWork } from '../store/memory-unit-of-work.js';

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
  /**
   * Image service; default a `LocalImageService` on the image catalog of `stores` (`stores.images`,
   * else in memory), caching in `imageDir` (see {@link defaultImageService}).
   */
  readonly images?: ImageService;
  /**
   * Cache directory of the default image service; default beside the database for durable
   * storage (`<dataDir>/images` for SQLite), else a temporary directory of the engine's own.
   */
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
    if (await flavors.get(flavor.id)) continue;
    // processes starting together on one database seed the same flavors: the first one wins
    await flavors.add(flavor).catch((e: unknown) => {
      if (!isNovaError(e, ErrorCode.Duplicate)) throw e;
    });
  }
  let quota: QuotaEngine;
  if (isQuotaEngine(options.quota)) quota = options.quota;
  else {
    const q = options.quota;
    quota = new CountingQuotaEngine(q?.defaults ?? defaultQuotaLimits);
    for (const [project, limits] of Object.entries(q?.projects ?? {})) await quota.setLimits(project, limits);
  }
  const units = unitOfWorkFor(s, quota instanceof CountingQuotaEngine ? quota : undefined);
  const factory = options.scheduler ?? (await defaultSchedulerFactory());
  const scheduler = typeof factory === 'function' ? factory({ claims, hosts }) : factory;
  provideValue(container, instanceStoreToken, units.instances);
  provideValue(container, hostStoreToken, hosts);
  provideValue(container, claimStoreToken, claims);
  provideValue(container, actionStoreToken, units.actions);
  provideValue(container, flavorStoreToken, flavors);
  provideValue(container, serverGroupStoreToken, units.groups);
  provideValue(container, unitOfWorkToken, units.unit);
  provideValue(container, eventLogToken, units.events);
  provideValue(container, leaseStoreToken, s.leases ?? new MemoryLeaseStore());
  provideValue(container, migrationStoreToken, s.migrations ?? new MemoryMigrationStore());
  provideValue(container, schedulerToken, scheduler);
  provideValue(container, quotaToken, quota);
  provideValue(
    container,
    imageServiceToken,
    options.images ?? defaultImageService({ dir: options.imageDir, store: s.images }),
  );
  provideValue(container, networkAdapterToken, options.network ?? noNetworkAdapter);
  provideValue(container, volumeAdapterToken, options.volumes ?? noVolumeAdapter);
  provideValue(container, clockToken, options.clock ?? systemClock);
  provideValue(container, hostRegistryToken, new HostRegistry());
  provideValue(container, engineOptionsToken, engineOptionsOf(options.engine, s.exclusive ?? !s.leases));
}

/** Engine options with defaults, validated; `soleOwner`: no other process shares the stores. */
function engineOptionsOf(given: Partial<EngineOptions> | undefined, soleOwner: boolean) {
  const merged = {
    ...defaultEngineOptions,
    ...given,
    timeouts: { ...defaultEngineOptions.timeouts, ...given?.timeouts },
    soleOwner,
  };
  for (const [key, value] of Object.entries(merged.timeouts)) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new ConfigurationError(
        `engine.timeouts.${key}`,
        `engine.timeouts.${key} must be a positive number of ms, got ${String(value)}`,
      );
    }
  }
  const counts = [
    'maxBuildAttempts',
    'powerOffTimeoutMs',
    'reconcileIntervalMs',
    'hostLeaseTtlMs',
    'staleTaskGraceMs',
    'eventRetention',
    'resizeConfirmWindowMs',
    'liveMigrationCompletionTimeoutMs',
    'liveMigrationForcedDowntimeMs',
  ] as const;
  for (const key of counts) {
    const value = merged[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new ConfigurationError(
        `engine.${key}`,
        `engine.${key} must be a non-negative number, got ${String(value)}`,
      );
    }
  }
  if (!Number.isInteger(merged.shelvedOffloadTimeMs) || merged.shelvedOffloadTimeMs < -1) {
    throw new ConfigurationError(
      'engine.shelvedOffloadTimeMs',
      `engine.shelvedOffloadTimeMs must be -1 (never), 0 (at once) or a number of ms, got ${String(merged.shelvedOffloadTimeMs)}`,
    );
  }
  return merged;
}

/**
 * The instance, action and group stores with the unit of work over them: the stores' own
 * (`stores.unit`), or a memory unit when they are the memory stores (applying quota writes to
 * `quota`, the default counting engine, when it is the engine's).
 * @throws ConfigurationError for custom stores without a unit of work
 */
function unitOfWorkFor(
  s: CoreStores,
  quota: CountingQuotaEngine | undefined,
): {
  instances: InstanceStore;
  actions: ActionStore;
  groups: ServerGroupStore;
  unit: UnitOfWork;
  events: EventLog;
} {
  const instances = s.instances ?? new MemoryInstanceStore();
  const actions = s.actions ?? new MemoryActionStore();
  const groups = s.groups ?? new MemoryServerGroupStore();
  if (s.unit) {
    if (!s.events) {
      throw new ConfigurationError(
        'stores.events',
        'stores.unit needs the event log it writes (stores.events)',
      );
    }
    return { instances, actions, groups, unit: s.unit, events: s.events };
  }
  if (
    instances instanceof MemoryInstanceStore &&
    actions instanceof MemoryActionStore &&
    groups instanceof MemoryServerGroupStore
  ) {
    const events = new MemoryEventLog();
    return {
      instances,
      actions,
      groups,
      events,
      unit: new MemoryUnitOfWork({ instances, actions, groups, events, ...(quota ? { quota } : {}) }),
    };
  }
  throw new ConfigurationError(
    'stores.unit',
    'custom instance, action or group stores need a unit of work (stores.unit) that writes them atomically',
  );
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
