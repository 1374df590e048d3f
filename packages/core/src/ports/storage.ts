import { z } from 'zod';
import { ConfigurationError } from '../errors.js';
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
      /** The server's URL; `$NOVA_LFS_PG_URL` when omitted (one of the two is required). */
      readonly url?: string;
      /** PostgreSQL schema (created if missing): letters, digits and `_`, at most 63. */
      readonly schema?: string;
      /** `statement_timeout` of every connection in ms (default 30,000; 0 turns it off). */
      readonly statementTimeoutMs?: number;
      /**
       * Age in ms after which a quota reservation counts as abandoned by a killed process and is
       * dropped by reconciliation (default 30,000). Several engines share the database, so it is
       * at least 1,000: a live engine settles its reservations within its admission.
       */
      readonly staleReservationMs?: number;
    };

/** What {@link storageOptionSchema} accepts, for messages. */
const ACCEPTED =
  "'memory', 'sqlite', { kind: 'sqlite', dataDir?, path? } or { kind: 'postgres', url?, schema?, statementTimeoutMs?, staleReservationMs? }";

const sqliteOptionSchema = z.strictObject({
  kind: z.literal('sqlite'),
  dataDir: z.string().min(1).optional(),
  path: z.string().min(1).optional(),
});

const postgresOptionSchema = z.strictObject({
  kind: z.literal('postgres'),
  url: z.string().min(1).optional(),
  schema: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'letters, digits and _, at most 63, not starting with a digit')
    .optional(),
  statementTimeoutMs: z.int().min(0).optional(),
  staleReservationMs: z.int().min(1000).max(86_400_000).optional(),
});

/** A {@link StorageOption}: unknown keys and kinds are refused, not ignored. */
export const storageOptionSchema = z.union([
  z.enum(['memory', 'sqlite']),
  z.discriminatedUnion('kind', [sqliteOptionSchema, postgresOptionSchema]),
]);

/**
 * Checks a storage option (`createCompute`'s `storage`, store-sql's `openStorage`) before anything
 * is opened or imported.
 * @throws ConfigurationError (setting `storage`) naming what was given, the rule it broke and what
 *   is accepted
 */
export function parseStorageOption(option: unknown): StorageOption {
  // the form is chosen by type and `kind`, so the message names the field that is wrong
  const kind =
    typeof option === 'object' && option !== null ? (option as { kind?: unknown }).kind : undefined;
  const schema =
    typeof option === 'string'
      ? z.enum(['memory', 'sqlite'])
      : kind === 'sqlite'
        ? sqliteOptionSchema
        : kind === 'postgres'
          ? postgresOptionSchema
          : storageOptionSchema;
  const result = schema.safeParse(option);
  if (result.success) return result.data as StorageOption;
  const issues = result.error.issues
    .map((i) => `${['storage', ...i.path.map(String)].join('.')}: ${i.message}`)
    .join('; ');
  throw new ConfigurationError(
    'storage',
    `storage ${describe(option)} is not accepted (${issues}); accepted: ${ACCEPTED}`,
    { cause: result.error },
  );
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

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
  /** Writes what is pending and closes the database. */
  close(): Promise<void>;
}
