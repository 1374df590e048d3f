import 'reflect-metadata';
import { type DependencyContainer, container as rootContainer } from 'tsyringe';
import { ComputeEngine } from '../engine/compute-engine.js';
import type { HostBinding } from '../engine/host-registry.js';
import { ConfigurationError } from '../errors.js';
import { type DurableStorage, parseStorageOption, type StorageOption } from '../ports/storage.js';
import { type CoreOptions, isQuotaEngine, registerCore } from './register-core.js';

/** Options of {@link createCompute}. */
export interface ComputeOptions extends CoreOptions {
  /**
   * Where state is kept when `stores` is not given. Default `'sqlite'`: durable, in
   * `$NOVA_LFS_DATA_DIR` or `./.nova-lfs` (needs `@nova-lfs/store-sql`). `'memory'` keeps it in
   * the process.
   */
  readonly storage?: StorageOption;
  /** Hosts to add before start-up reconciliation. */
  readonly hosts?: readonly HostBinding[];
  /** Parent container (a child is created; default the global tsyringe container). */
  readonly container?: DependencyContainer;
  /** Run start-up reconciliation (default true). */
  readonly reconcile?: boolean;
}

/**
 * Composes an engine with sensible defaults (durable SQLite storage, `@nova-lfs/scheduler`,
 * local image cache) around the given hosts, reconciles, and returns it. The storage it opened
 * records the engine's events and is closed by `engine.close()`.
 *
 * ```ts
 * const compute = await createCompute({
 *   scheduler: createScheduler(),
 *   flavors: [{ id: 'm1.small', vcpus: 1, ramMb: 2048 }],
 *   hosts: [{ id: 'node-1', driver: new DockerDriver() }],
 * });
 * const [vm] = await compute.create({ name: 'web', projectId: 'demo', userId: 'me', flavorId: 'm1.small', imageId: 'busybox' });
 * ```
 */
export async function createCompute(given: ComputeOptions): Promise<ComputeEngine> {
  if (given === null || typeof given !== 'object') {
    throw new ConfigurationError(
      'options',
      `createCompute needs an options object, got ${given === null ? 'null' : typeof given}`,
    );
  }
  // a long-running engine heals continuously unless told otherwise
  const options: ComputeOptions = {
    ...given,
    engine: { reconcileIntervalMs: 60_000, ...given.engine },
  };
  const container = (options.container ?? rootContainer).createChildContainer();
  const storage = options.stores ? undefined : await openStorage(options.storage ?? 'sqlite');
  try {
    await registerCore(container, storage ? await withStorage(options, storage) : options);
    const engine = container.resolve(ComputeEngine);
    if (storage) {
      engine.attachStorage(storage.location, () => storage.close());
    }
    for (const binding of options.hosts ?? []) await engine.addHost(binding);
    if (options.reconcile !== false) await engine.open();
    return engine;
  } catch (e) {
    await storage?.close().catch(() => undefined);
    throw e;
  }
}

/** The options with the storage's stores and quota (limits given as options applied to it). */
async function withStorage(options: ComputeOptions, storage: DurableStorage): Promise<CoreOptions> {
  if (isQuotaEngine(options.quota)) return { ...options, stores: storage.stores };
  const limits = options.quota;
  if (limits?.defaults) storage.quota.setDefaults?.(limits.defaults);
  for (const [project, l] of Object.entries(limits?.projects ?? {}))
    await storage.quota.setLimits(project, l);
  return { ...options, stores: storage.stores, quota: storage.quota };
}

const STORE_SQL_PACKAGE = '@nova-lfs/store-sql';

/**
 * Opens durable storage through `@nova-lfs/store-sql`, looked up at run time (core does not depend
 * on it). The option is checked first: a typo is refused before anything is imported or opened.
 * @throws ConfigurationError (setting `storage`) for an option that is not a {@link StorageOption}
 *   or when store-sql cannot be loaded
 */
async function openStorage(given: unknown): Promise<DurableStorage | undefined> {
  const option = parseStorageOption(given);
  if (option === 'memory') return undefined;
  let mod: { openStorage?: (o: Exclude<StorageOption, 'memory'>) => Promise<DurableStorage> };
  try {
    mod = (await import(STORE_SQL_PACKAGE)) as typeof mod;
  } catch (e) {
    throw new ConfigurationError(
      'storage',
      `storage ${JSON.stringify(option)} needs ${STORE_SQL_PACKAGE}, which cannot be loaded: install it, or pass storage: 'memory'`,
      { cause: e },
    );
  }
  if (typeof mod.openStorage !== 'function') {
    throw new ConfigurationError('storage', `${STORE_SQL_PACKAGE} does not export openStorage`);
  }
  return mod.openStorage(option);
}
