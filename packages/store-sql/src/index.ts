/**
 * `@nova-lfs/store-sql`: durable Nova LFS state on SQLite (embedded) and PostgreSQL (shared by
 * several processes), one Kysely implementation for both.
 * @packageDocumentation
 */
export {
  DEFAULT_STATEMENT_TIMEOUT_MS,
  openPostgres,
  openSqlite,
  type PostgresOpenOptions,
  type SqlDatabase,
} from './database.js';
export {
  ContentionError,
  type DatabaseStatementDetails,
  DatabaseStatementError,
  DatabaseUnavailableError,
  InvalidParameterError,
  isConflict,
  redactUrl,
  SchemaTooNewError,
  StoreErrorCode,
} from './errors.js';
export { openKyselySqlite, statementCachingDatabase } from './kysely-sqlite.js';
export { type Dialect, migrate, migrationsFor } from './migrations.js';
export {
  openPostgresStores,
  openSqliteStores,
  openStorage,
  type PostgresStoreOptions,
  type SqlStoreOptions,
  type SqlStores,
} from './open-stores.js';
export {
  PostgresExecutor,
  type PostgresExecutorOptions,
  type PostgresExecutorStats,
} from './postgres-executor.js';
export {
  type GroupCommitOptions,
  type GroupCommitStats,
  PostgresGroupCommit,
} from './postgres-group-commit.js';
export type { Database } from './schema.js';
export { SqlActionStore } from './sql-action-store.js';
export { SqlFlavorStore, SqlHostStore, SqlServerGroupStore } from './sql-catalog-stores.js';
export { SqlClaimStore } from './sql-claim-store.js';
export { type EventAppend, SqlEventLog } from './sql-event-log.js';
export { SqlEventStore, type StoredEvent } from './sql-event-store.js';
export type { SqlExecutor, SqlRunner, StatementResult } from './sql-executor.js';
export { SqlInstanceStore } from './sql-instance-store.js';
export { SqlLeaseStore } from './sql-lease-store.js';
export { SqlMigrationStore } from './sql-migration-store.js';
export { SqlQuotaEngine } from './sql-quota-engine.js';
export { SqlUnitOfWork, type SqlUnitStores } from './sql-unit-of-work.js';
export { SqliteExecutor } from './sqlite-executor.js';
export { type BoundStatement, PreparedStatement } from './statement.js';
