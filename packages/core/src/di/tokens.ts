import type { EngineOptions } from '../engine/engine-options.js';
import type { HostRegistry } from '../engine/host-registry.js';
import type { Clock } from '../ports/clock.js';
import type { ImageService } from '../ports/image-service.js';
import type { NetworkAdapter } from '../ports/network.js';
import type { QuotaEngine } from '../ports/quota.js';
import type { Scheduler } from '../ports/scheduler.js';
import type {
  ActionStore,
  ClaimStore,
  FlavorStore,
  HostStore,
  InstanceStore,
  MigrationStore,
  ServerGroupStore,
} from '../ports/stores.js';
import type { EventLog, LeaseStore, UnitOfWork } from '../ports/unit-of-work.js';
import type { VolumeAdapter } from '../ports/volume.js';
import { createToken } from './token.js';

/** Instance records. */
export const instanceStoreToken = createToken<InstanceStore>('core.instanceStore');
/** Host records. */
export const hostStoreToken = createToken<HostStore>('core.hostStore');
/** Resource claims. */
export const claimStoreToken = createToken<ClaimStore>('core.claimStore');
/** Instance action history. */
export const actionStoreToken = createToken<ActionStore>('core.actionStore');
/** Migration records. */
export const migrationStoreToken = createToken<MigrationStore>('core.migrationStore');
/** Flavors. */
export const flavorStoreToken = createToken<FlavorStore>('core.flavorStore');
/** Server groups. */
export const serverGroupStoreToken = createToken<ServerGroupStore>('core.serverGroupStore');
/** Atomic steps over the stores. */
export const unitOfWorkToken = createToken<UnitOfWork>('core.unitOfWork');
/** The durable event log. */
export const eventLogToken = createToken<EventLog>('core.eventLog');
/** Host leases. */
export const leaseStoreToken = createToken<LeaseStore>('core.leaseStore');
/** The scheduler. */
export const schedulerToken = createToken<Scheduler>('core.scheduler');
/** Quota. */
export const quotaToken = createToken<QuotaEngine>('core.quota');
/** Images and the local image cache. */
export const imageServiceToken = createToken<ImageService>('core.imageService');
/** Optional network adapter. */
export const networkAdapterToken = createToken<NetworkAdapter>('core.networkAdapter');
/** Optional volume adapter. */
export const volumeAdapterToken = createToken<VolumeAdapter>('core.volumeAdapter');
/** Time source. */
export const clockToken = createToken<Clock>('core.clock');
/** Hosts and their drivers. */
export const hostRegistryToken = createToken<HostRegistry>('core.hostRegistry');
/** Engine tuning. */
export const engineOptionsToken = createToken<EngineOptions & { readonly soleOwner?: boolean }>(
  'core.engineOptions',
);
