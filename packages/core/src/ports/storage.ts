import type { Observable } from 'rxjs';
import type { InstanceEvent } from '../engine/events.js';
import type { QuotaLimits } from '../model/quota.js';
import type { QuotaEngine } from './quota.js';
import type { CoreStores } from './stores.js';

/** Where `createCompute` keeps the engine's state when no `stores` are given. */
export type StorageOption =
  /** In process memory: gone when the process exits. */
  | 'memory'
  /** SQLite in `$NOVA_LFS_DATA_DIR/nova-lfs.sqlite`, else `./.nova-lfs/nova-lfs.sqlite`. */
  | 'sqlite'
  | {
      readonly kind: 'sqlite';
      /** Directory of `nova-lfs.sqlite` (created if missing). */
      readonly dataDir?: string;
      /** The database file itself (wins over `dataDir`). */
      readonly path?: string;
    }
  | {
      readonly kind: 'postgres';
      /** Default `$NOVA_LFS_PG_URL`. */
      readonly url?: string;
      /** PostgreSQL schema (created if missing). */
      readonly schema?: string;
    };

/**
 * A durable home for the engine's state, opened by `createCompute` from a {@link StorageOption}
 * (`@nova-lfs/store-sql` provides it). `createCompute` records the engine's events in it and
 * closes it when the engine closes.
 */
export interface DurableStorage {
  /**
   * Where the state lives, for people: `SQLite <file>`, or `PostgreSQL <url> (schema <s>)` with the
   * password redacted.
   */
  readonly location: string;
  readonly stores: Required<CoreStores>;
  readonly quota: QuotaEngine & { setDefaults?(limits: QuotaLimits): void };
  /** Persists every event of the stream (in order) until the storage is closed. */
  recordEvents(events$: Observable<InstanceEvent>): void;
  /** Writes what is pending and closes the database. */
  close(): Promise<void>;
}
