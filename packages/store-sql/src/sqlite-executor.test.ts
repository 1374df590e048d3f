import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteExecutor } from './sqlite-executor.js';

function fresh(): { path: string; handle: BetterSqlite3.Database; exec: SqliteExecutor } {
  const path = join(mkdtempSync(join(tmpdir(), 'nlfs-exec-')), 'db.sqlite');
  const handle = new BetterSqlite3(path);
  handle.pragma('journal_mode = WAL');
  handle.exec('create table t (id text primary key, n integer not null)');
  return { path, handle, exec: new SqliteExecutor(handle) };
}

const insert = (id: string, n = 0) => ({ sql: 'insert into t (id, n) values (?, ?)', parameters: [id, n] });
const count = { sql: 'select count(*) as c from t', parameters: [] };

describe('SqliteExecutor (group commit)', () => {
  it('resolves a write only once it is committed: another connection sees it', async () => {
    const { path, exec } = fresh();
    const other = new BetterSqlite3(path, { readonly: true });
    await exec.run(insert('a'));
    expect(other.prepare('select id from t').all()).toEqual([{ id: 'a' }]);
    other.close();
  });

  it('lets concurrent writers share one commit', async () => {
    const { exec } = fresh();
    const before = exec.stats();
    await Promise.all(Array.from({ length: 50 }, (_, i) => exec.run(insert(`k${i}`))));
    const after = exec.stats();
    expect(after.statements - before.statements).toBe(50);
    expect(after.commits - before.commits).toBeLessThanOrEqual(2);
    expect((await exec.run<{ c: number }>(count)).rows[0]!.c).toBe(50);
  });

  it('undoes only the unit that failed; the units beside it in the same group commit', async () => {
    const { exec } = fresh();
    await exec.run(insert('taken'));
    const results = await Promise.allSettled([
      exec.unit(async (tx) => {
        await tx.run(insert('u1'));
        await tx.run(insert('u2'));
      }),
      exec.unit(async (tx) => {
        await tx.run(insert('v1'));
        await tx.run(insert('taken')); // unique violation: v1 must be undone with it
      }),
      exec.unit(async (tx) => {
        await tx.run(insert('w1'));
      }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const ids = (await exec.run<{ id: string }>({ sql: 'select id from t order by id', parameters: [] }))
      .rows;
    expect(ids.map((r) => r.id)).toEqual(['taken', 'u1', 'u2', 'w1']);
  });

  it('never interleaves units: a unit reads its own writes and nobody else’s half-done unit', async () => {
    const { exec } = fresh();
    const seen: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        exec.unit(async (tx) => {
          const c0 = (await tx.run<{ c: number }>(count)).rows[0]!.c;
          await tx.run(insert(`a${i}`));
          await tx.run(insert(`b${i}`));
          const c1 = (await tx.run<{ c: number }>(count)).rows[0]!.c;
          seen.push(c1 - c0);
        }),
      ),
    );
    expect(seen).toEqual(Array.from({ length: 20 }, () => 2));
  });

  it('reports the row count a write changed, and rows a RETURNING statement gave', async () => {
    const { exec } = fresh();
    await exec.run(insert('x', 1));
    const upd = await exec.run({ sql: 'update t set n = n + 1 where id = ?', parameters: ['x'] });
    expect(upd.affected).toBe(1);
    const miss = await exec.run({ sql: 'update t set n = n + 1 where id = ?', parameters: ['nope'] });
    expect(miss.affected).toBe(0);
    const del = await exec.run<{ n: number }>({
      sql: 'delete from t where id = ? returning n',
      parameters: ['x'],
    });
    expect(del.rows).toEqual([{ n: 2 }]);
  });
});

describe('SqliteExecutor with group commit off', () => {
  it('commits every write and unit on its own, each visible to another connection when it resolves', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-exec-')), 'db.sqlite');
    const handle = new BetterSqlite3(path);
    handle.pragma('journal_mode = WAL');
    handle.exec('create table t (id text primary key, n integer not null)');
    const exec = new SqliteExecutor(handle, { groupCommit: false });
    const other = new BetterSqlite3(path, { readonly: true });
    const seen = other.prepare('select count(*) as c from t where id = ?');
    const before = exec.stats();
    const visible = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (i % 3 === 0
          ? exec.unit(async (tx) => {
              await tx.run(insert(`u${i}`));
            })
          : exec.run(insert(`r${i}`))
        ).then(() => (seen.get(i % 3 === 0 ? `u${i}` : `r${i}`) as { c: number }).c),
      ),
    );
    expect(visible).toEqual(Array(30).fill(1));
    expect(exec.stats().commits - before.commits).toBe(30);
    // a failing write or unit commits nothing of its own and leaves the executor usable
    await expect(exec.run(insert('r1'))).rejects.toThrow(/UNIQUE/);
    await expect(
      exec.unit(async (tx) => {
        await tx.run(insert('half'));
        await tx.run(insert('u0'));
      }),
    ).rejects.toThrow(/UNIQUE/);
    expect((seen.get('half') as { c: number }).c).toBe(0);
    await exec.run(insert('after'));
    expect((seen.get('after') as { c: number }).c).toBe(1);
    other.close();
  });
});
