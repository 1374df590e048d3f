import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openPostgresStores, openSqliteStores, type SqlStores } from './open-stores.js';

/** The PostgreSQL URL tests use. */
export const pgUrl = process.env.NOVA_LFS_PG_URL ?? 'postgres://nova:nova@127.0.0.1:5432/nova_test';

async function pgAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

/** PostgreSQL availability, decided once per file. With CI=true a missing server is an error. */
export const postgresAvailable = await pgAvailable();
if (!postgresAvailable) {
  const reason = `PostgreSQL is not reachable at ${pgUrl}; start it with: bash scripts/services/start-postgres.sh`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping PostgreSQL tests: ${reason}`);
}

/** A fresh, isolated PostgreSQL schema name. */
export function freshSchema(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

/** Drops a test schema. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  await client.query(`drop schema if exists "${schema}" cascade`);
  await client.end();
}

/** Opens fresh stores of the given dialect (a new SQLite file or a new PostgreSQL schema). */
export async function freshStores(
  dialect: 'sqlite' | 'postgres',
  options: { staleReservationMs?: number } = {},
): Promise<SqlStores & { schema?: string; path?: string }> {
  if (dialect === 'sqlite') {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-sql-')), 'db.sqlite');
    return { ...(await openSqliteStores({ path, ...options })), path };
  }
  const schema = freshSchema();
  const stores = await openPostgresStores({ url: pgUrl, schema, ...options });
  return {
    ...stores,
    schema,
    close: async () => {
      await stores.close();
      await dropSchema(schema);
    },
  };
}
