import { ErrorCode, isNovaError, NovaError } from '@nova-lfs/core';
import pg from 'pg';

/** Stable error codes of the SQL stores. */
export const StoreErrorCode = {
  Unavailable: ErrorCode.DbUnavailable,
  SchemaTooNew: ErrorCode.DbSchemaTooNew,
  /** A parameter cannot be sent to the database (a NUL byte in a string, an unconvertible value). */
  InvalidParameter: ErrorCode.DbInvalidParameter,
  /** The database refused a value (SQLSTATE class 22: bad text representation, out of range). */
  InvalidValue: ErrorCode.DbInvalidValue,
  /** A unique constraint refused the write (SQLSTATE 23505). */
  Duplicate: ErrorCode.DbDuplicate,
  /** Another integrity constraint refused the write (SQLSTATE class 23). */
  Constraint: ErrorCode.DbConstraint,
  /** Serialization failure or deadlock with another transaction (40001, 40P01): retryable. */
  Conflict: ErrorCode.DbConflict,
  /** The statement ran past `statement_timeout` or a lock wait timed out (57014, 55P03). */
  Timeout: ErrorCode.DbTimeout,
  /** Any other refusal by the database. */
  StatementFailed: ErrorCode.DbStatementFailed,
} as const;

/** Union of the SQL stores' error codes. */
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

/** The database cannot be reached or opened. `database` names it (passwords redacted). */
export class DatabaseUnavailableError extends NovaError<{ database: string }> {
  constructor(database: string, options?: { cause?: unknown }) {
    const reason = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(StoreErrorCode.Unavailable, `cannot open database ${database}${reason}`, { database }, options);
  }

  /** A lost connection or a server that is starting or stopping may answer later. */
  get retryable(): boolean {
    return true;
  }
}

/** The database holds migrations this code does not know: it was written by a newer version. */
export class SchemaTooNewError extends NovaError<{ database: string; unknownMigrations: string[] }> {
  constructor(database: string, unknownMigrations: string[]) {
    super(
      StoreErrorCode.SchemaTooNew,
      `database ${database} has schema migrations unknown to this version (${unknownMigrations.join(', ')}); upgrade Nova LFS`,
      { database, unknownMigrations },
    );
  }
}

/**
 * A statement parameter cannot be sent: a string holding a NUL byte (PostgreSQL text cannot
 * hold one), or a value `pg` cannot convert (a `BigInt` inside an object). Nothing was sent;
 * only the statement's own caller gets this. `parameter` is the 1-based `$n` of the value.
 */
export class InvalidParameterError extends NovaError<{ parameter: number; reason: string }> {
  constructor(parameter: number, reason: string, options?: { cause?: unknown }) {
    super(
      StoreErrorCode.InvalidParameter,
      `statement parameter $${parameter} cannot be sent to the database: ${reason}`,
      { parameter, reason },
      options,
    );
  }
}

/** Details of a {@link DatabaseStatementError}. */
export interface DatabaseStatementDetails {
  /** The database's own error code (PostgreSQL SQLSTATE, e.g. `23505`). */
  readonly sqlState: string;
  /** The constraint that refused the write, when the database names one. */
  readonly constraint?: string;
  /** The table, when the database names one. */
  readonly table?: string;
}

/**
 * The database refused a statement. `code` says how ({@link StoreErrorCode}: invalid value,
 * duplicate, constraint, conflict, timeout, or statement failed); `details.sqlState` keeps the
 * database's own code and `cause` the driver's error. Nothing of the refused statement (or of
 * the statements that commit with it) was kept.
 */
export class DatabaseStatementError extends NovaError<DatabaseStatementDetails> {
  constructor(code: StoreErrorCode, message: string, details: DatabaseStatementDetails, cause: unknown) {
    super(code, message, details, { cause });
  }

  /** Whether running the same statement again may succeed (conflicts and timeouts). */
  get retryable(): boolean {
    return this.code === StoreErrorCode.Conflict || this.code === StoreErrorCode.Timeout;
  }
}

/** The store error code for a PostgreSQL SQLSTATE. */
function codeOf(sqlState: string): StoreErrorCode {
  if (sqlState === '23505') return StoreErrorCode.Duplicate;
  if (sqlState.startsWith('23')) return StoreErrorCode.Constraint;
  if (sqlState.startsWith('22')) return StoreErrorCode.InvalidValue;
  if (sqlState === '40001' || sqlState === '40P01') return StoreErrorCode.Conflict;
  if (sqlState === '57014' || sqlState === '55P03') return StoreErrorCode.Timeout;
  return StoreErrorCode.StatementFailed;
}

/** SQLSTATEs of a server that went away or cannot take connections now (class 08, 57P01-57P03). */
function isUnavailable(sqlState: string): boolean {
  return sqlState.startsWith('08') || /^57P0[1-3]$/.test(sqlState);
}

/**
 * Maps what the `pg` driver threw to a typed store error, keeping it as `cause`: a server's
 * refusal becomes a {@link DatabaseStatementError}, a lost or refused connection a
 * {@link DatabaseUnavailableError} naming `database`. Nova LFS errors pass through unchanged.
 */
export function toStoreError(e: unknown, database: string): unknown {
  if (isNovaError(e)) return e;
  if (e instanceof pg.DatabaseError && typeof e.code === 'string') {
    if (isUnavailable(e.code)) return new DatabaseUnavailableError(database, { cause: e });
    return new DatabaseStatementError(
      codeOf(e.code),
      e.message,
      {
        sqlState: e.code,
        ...(e.constraint ? { constraint: e.constraint } : {}),
        ...(e.table ? { table: e.table } : {}),
      },
      e,
    );
  }
  // anything else from the driver: the connection broke, timed out or was refused
  return new DatabaseUnavailableError(database, { cause: e });
}

/** Whether `e` is a serialization failure or deadlock (typed, or raw from a driver): retryable as a whole. */
export function isConflict(e: unknown): boolean {
  if (isNovaError(e, StoreErrorCode.Conflict)) return true;
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === '40001' || code === '40P01' || code === 'SQLITE_BUSY';
}

/** A database URL with its password replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

/** Whether a driver error is a unique-constraint violation (typed, or SQLite's and PostgreSQL's wording). */
export function isDuplicate(e: unknown): boolean {
  if (isNovaError(e, StoreErrorCode.Duplicate)) return true;
  return /unique|duplicate/i.test((e as Error)?.message ?? '');
}

/**
 * An operation kept losing races with concurrent writers and gave up after `attempts` tries
 * (nothing of it is held). Retryable.
 */
export class ContentionError extends NovaError<{ operation: string; key: string; attempts: number }> {
  constructor(operation: string, key: string, attempts: number) {
    super(
      StoreErrorCode.Conflict,
      `${operation} for ${key} lost ${attempts} races with concurrent writers; try again`,
      {
        operation,
        key,
        attempts,
      },
    );
  }

  /** Trying again later may succeed. */
  get retryable(): boolean {
    return true;
  }
}
