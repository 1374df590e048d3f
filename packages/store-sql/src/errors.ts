import { NovaError } from '@nova-lfs/core';

/** Stable error codes of the SQL stores. */
export const StoreErrorCode = {
  Unavailable: 'NLFS_DB_UNAVAILABLE',
  SchemaTooNew: 'NLFS_DB_SCHEMA_TOO_NEW',
} as const;

/** The database cannot be reached or opened. `database` names it (passwords redacted). */
export class DatabaseUnavailableError extends NovaError<{ database: string }> {
  constructor(database: string, options?: { cause?: unknown }) {
    const reason = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(StoreErrorCode.Unavailable, `cannot open database ${database}${reason}`, { database }, options);
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

/** Whether a driver error is a unique-constraint violation (SQLite and PostgreSQL wording). */
export function isDuplicate(e: unknown): boolean {
  return /unique|duplicate/i.test((e as Error)?.message ?? '');
}
