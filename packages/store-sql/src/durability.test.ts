import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ackWorkerPath, exited, seededRandom, startWorker } from './crash/crash-harness.js';
import { openPostgres, openSqlite, type SqlDatabase } from './database.js';
import { dropSchema, freshSchema, pgUrl, postgresAvailable } from './sql-env.test-helper.js';

const KILLS = 10;

/** Kills a writer at random points; every write it had acknowledged must be in the database. */
async function killWriters(
  dialect: 'sqlite' | 'postgres',
  location: string,
  open: () => Promise<SqlDatabase>,
) {
  const rnd = seededRandom(11);
  let checked = 0;
  for (let k = 0; k < KILLS; k++) {
    const { child, output } = await startWorker([dialect, location], ackWorkerPath);
    await new Promise((r) => setTimeout(r, 50 + Math.floor(rnd() * 250)));
    child.kill('SIGKILL');
    await exited(child);
    const lines = output().split('\n');
    lines.pop(); // a line cut by the kill is not an acknowledgement
    const acked = lines.filter((l) => l !== 'ready');
    const database = await open();
    try {
      const { rows } = await database.exec.run<{ id: string }>(
        database.db
          .selectFrom('acked' as never)
          .select('id' as never)
          .compile(),
      );
      const stored = new Set(rows.map((r) => r.id));
      const lost = acked.filter((id) => !stored.has(id));
      expect(lost, `acknowledged writes lost after kill ${k}`).toEqual([]);
      checked += acked.length;
    } finally {
      await database.close();
    }
  }
  expect(checked).toBeGreaterThan(KILLS * 10);
}

describe('durability: a write that resolved survives a SIGKILL of its process', () => {
  it('SQLite (group commit)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-ack-')), 'db.sqlite');
    await killWriters('sqlite', path, () => openSqlite(path));
  }, 120_000);

  it.skipIf(!postgresAvailable)(
    'PostgreSQL (statements, relaxed statements, units, statements together; batched)',
    async () => {
      const schema = freshSchema();
      try {
        await killWriters('postgres', schema, () => openPostgres(pgUrl, { schema }));
      } finally {
        await dropSchema(schema);
      }
    },
    120_000,
  );
});
