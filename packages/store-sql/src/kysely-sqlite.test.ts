import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { openKyselySqlite, statementCachingDatabase } from './kysely-sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'nlfs-kysely-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('statement-caching SQLite for Kysely', () => {
  it('prepares each distinct SQL text once and evicts the least recently used beyond its size', () => {
    const handle = new BetterSqlite3(':memory:');
    let prepared = 0;
    const original = handle.prepare.bind(handle);
    handle.prepare = ((text: string) => {
      prepared++;
      return original(text);
    }) as typeof handle.prepare;
    const db = statementCachingDatabase(handle, 2);
    db.prepare('select 1').all([]);
    db.prepare('select 1').all([]);
    expect(prepared).toBe(1);
    db.prepare('select 2').all([]);
    db.prepare('select 1').all([]);
    db.prepare('select 3').all([]); // evicts `select 2`
    db.prepare('select 1').all([]);
    expect(prepared).toBe(3);
    db.prepare('select 2').all([]);
    expect(prepared).toBe(4);
    db.close();
  });

  it('runs queries through Kysely with the same answers, in WAL mode, across reopen', async () => {
    const file = join(dir, 'api.sqlite');
    const db = openKyselySqlite<{ t: { id: number; v: string } }>(file);
    await db.schema
      .createTable('t')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('v', 'text')
      .execute();
    for (let i = 0; i < 50; i++)
      await db
        .insertInto('t')
        .values({ id: i, v: `v${i}` })
        .execute();
    const rows = await db.selectFrom('t').selectAll().where('id', '<', 3).orderBy('id').execute();
    expect(rows).toEqual([
      { id: 0, v: 'v0' },
      { id: 1, v: 'v1' },
      { id: 2, v: 'v2' },
    ]);
    const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(db);
    expect(mode.rows[0]?.journal_mode).toBe('wal');
    await db.destroy();
    const again = openKyselySqlite<{ t: { id: number; v: string } }>(file);
    expect(
      (
        await again
          .selectFrom('t')
          .select(({ fn }) => fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    ).toBe(50);
    await again.destroy();
  });
});
