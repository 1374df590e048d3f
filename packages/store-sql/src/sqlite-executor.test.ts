import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { SqlRunner } from './sql-executor.js';
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

  it('runs units without savepoints and, when one fails, runs the group again: every other caller gets the outcome of the last run', async () => {
    const { exec } = fresh();
    await exec.run(insert('taken'));
    const before = exec.stats();
    const runs: string[] = [];
    const counted = (id: string) => async (tx: SqlRunner) => {
      runs.push(id);
      await tx.run(insert(id));
      return (await tx.run<{ c: number }>(count)).rows[0]!.c;
    };
    const failing = (id: string) => async (tx: SqlRunner) => {
      runs.push(id);
      await tx.run(insert(id));
      await tx.run(insert('taken')); // unique violation: its first write must be undone with it
    };
    const results = await Promise.allSettled([
      exec.run(insert('w0', 7)),
      exec.unit(counted('a')),
      exec.unit(failing('b')),
      exec.unit(counted('c')),
      exec.unit(failing('d')),
      exec.run(insert('w1')),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect((results[0] as PromiseFulfilledResult<{ affected: number }>).value.affected).toBe(1);
    // 'a' counted taken, w0 and itself, on both its runs; 'c' ran after the replay, beside a and w0
    expect((results[1] as PromiseFulfilledResult<number>).value).toBe(3);
    expect((results[3] as PromiseFulfilledResult<number>).value).toBe(4);
    expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/UNIQUE/);
    expect(String((results[4] as PromiseRejectedResult).reason)).toMatch(/UNIQUE/);
    // b failed without a savepoint: the group was undone and a ran again (in a savepoint); c and d
    // joined a group that runs units in savepoints, so d's failure undid only d
    expect(runs).toEqual(['a', 'b', 'a', 'c', 'd']);
    const after = exec.stats();
    expect(after.replays - before.replays).toBe(1);
    expect(after.savepoints - before.savepoints).toBe(3);
    expect(after.commits - before.commits).toBe(1);
    const ids = (await exec.run<{ id: string }>({ sql: 'select id from t order by id', parameters: [] }))
      .rows;
    expect(ids.map((r) => r.id)).toEqual(['a', 'c', 'taken', 'w0', 'w1']);
    // the next group is optimistic again
    await Promise.all([exec.unit(counted('e')), exec.unit(counted('f'))]);
    expect(exec.stats().replays - before.replays).toBe(1);
    expect(exec.stats().savepoints - after.savepoints).toBe(0);
  });

  it('runs the group again when SQLite rolled its whole transaction back (OR ROLLBACK)', async () => {
    const { exec } = fresh();
    await exec.run(insert('taken'));
    const before = exec.stats();
    const rollback = { sql: 'insert or rollback into t (id, n) values (?, ?)', parameters: ['taken', 0] };
    const results = await Promise.allSettled([
      exec.run(insert('w0')),
      exec.unit(async (tx) => {
        await tx.run(insert('a'));
      }),
      exec.run(rollback),
      exec.unit(async (tx) => {
        await tx.run(insert('b'));
        await tx.run(rollback);
      }),
      exec.unit(async (tx) => {
        await tx.run(insert('c'));
      }),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    expect(exec.stats().replays - before.replays).toBe(2);
    const ids = (await exec.run<{ id: string }>({ sql: 'select id from t order by id', parameters: [] }))
      .rows;
    expect(ids.map((r) => r.id)).toEqual(['a', 'c', 'taken', 'w0']);
  });

  for (const shared of [false, true]) {
    it(`lets no other connection write while a group runs again (${shared ? 'shared file: a savepoint keeps the transaction' : 'exclusive locking mode keeps the lock'})`, async () => {
      const path = join(mkdtempSync(join(tmpdir(), 'nlfs-exec-')), 'db.sqlite');
      const handle = new BetterSqlite3(path);
      if (!shared) handle.pragma('locking_mode = EXCLUSIVE');
      handle.pragma('journal_mode = WAL');
      handle.exec('create table t (id text primary key, n integer not null)');
      const exec = new SqliteExecutor(handle, { shared });
      await exec.run(insert('taken'));
      const other = new BetterSqlite3(path, { timeout: 0 });
      const seen: string[] = [];
      const results = await Promise.allSettled([
        exec.unit(async (tx) => {
          await tx.run(insert('a'));
          // on its second run (the replay), between the rollback and the commit
          if (seen.push('a') === 2) {
            try {
              other.exec("insert into t (id, n) values ('intruder', 0)");
              seen.push('intruder wrote');
            } catch (e) {
              seen.push((e as { code?: string }).code ?? String(e));
            }
          }
        }),
        exec.unit(async (tx) => {
          await tx.run(insert('taken'));
        }),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
      expect(seen).toEqual(['a', 'a', 'SQLITE_BUSY']);
      expect(exec.stats().replays).toBe(1);
      other.close();
      const ids = (await exec.run<{ id: string }>({ sql: 'select id from t order by id', parameters: [] }))
        .rows;
      expect(ids.map((r) => r.id)).toEqual(['a', 'taken']);
      handle.close();
    });
  }

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
