import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCompute } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { schedulerFactory } from '@nova-lfs/scheduler';
import { describe, expect, it } from 'vitest';
import { exited, seededRandom, startWorker } from './crash/crash-harness.js';
import { openPostgresStores, openSqliteStores, type SqlStores } from './open-stores.js';
import { dropSchema, freshSchema, pgUrl, postgresAvailable } from './sql-env.test-helper.js';

const KILLS = Number(process.env.NOVA_LFS_CRASH_KILLS ?? 100);
const HOSTS = 3;

/** Restarts an engine in this process over the durable state and checks what reconciliation left. */
async function restartAndCheck(
  open: () => Promise<SqlStores>,
  stateDir: string,
): Promise<{ instances: number; orphans: number }> {
  const s = await open();
  try {
    const drivers = Array.from(
      { length: HOSTS },
      (_, i) => new FakeDriver({ statePath: join(stateDir, `h${i}.json`), vcpus: 4, ramMb: 8192 }),
    );
    const compute = await createCompute({
      // the killed worker is gone: this engine is the only process on the database
      stores: { ...s.stores, exclusive: true },
      quota: s.quota,
      scheduler: schedulerFactory(),
      flavors: [{ id: 'm1', vcpus: 1, ramMb: 512 }],
      hosts: drivers.map((driver, i) => ({ id: `h${i}`, driver })),
      reconcile: false,
    });
    const report = await compute.open();
    const instances = await s.stores.instances.list();
    // nothing stuck in a task
    expect(instances.filter((i) => i.taskState !== null).map((i) => `${i.id}:${i.taskState}`)).toEqual([]);
    // claims: exactly one per placed instance, none without its instance on that host
    const claims = await s.claims.list();
    const byId = new Map(instances.map((i) => [i.id, i]));
    for (const c of claims) expect(byId.get(c.instanceId)?.hostId, `claim ${c.id} leaked`).toBe(c.hostId);
    for (const i of instances) {
      const mine = claims.filter((c) => c.instanceId === i.id);
      // a claim lives until its instance is deleted: only an instance never placed (or whose
      // build was undone) holds none
      expect(mine.length, `instance ${i.id} (${i.vmState}) claims`).toBe(i.hostId === null ? 0 : 1);
    }
    // host usage rows agree with the claims; capacity never exceeded
    for (let h = 0; h < HOSTS; h++) {
      const usage = await s.claims.usage(`h${h}`);
      const vcpus = claims
        .filter((c) => c.hostId === `h${h}`)
        .reduce((a, c) => a + (c.resources.VCPU ?? 0), 0);
      expect(usage.VCPU ?? 0).toBe(vcpus);
      expect(vcpus).toBeLessThanOrEqual(4);
    }
    // quota: usage recounted, no reservation left
    const q = await s.quota.usage('p');
    expect(q.inUse.instances).toBe(instances.length);
    expect(q.reserved).toEqual({ instances: 0, cores: 0, ramMb: 0 });
    expect(await s.stores.actions.listPending()).toEqual([]);
    // every guest is a known instance on its host, or reported as an orphan
    const orphanIds = new Set(report.orphans.map((o) => o.instanceId));
    for (let h = 0; h < HOSTS; h++) {
      for (const g of await drivers[h]!.listInstances()) {
        if (byId.get(g.instanceId)?.hostId !== `h${h}`)
          expect(orphanIds.has(g.instanceId), `guest ${g.instanceId}`).toBe(true);
      }
    }
    await compute.close();
    return { instances: instances.length, orphans: report.orphans.length };
  } finally {
    await s.close();
  }
}

async function killLoop(
  dialect: 'sqlite' | 'postgres',
  location: string,
  open: () => Promise<SqlStores>,
): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'nlfs-crash-state-'));
  const rnd = seededRandom(7);
  let maxInstances = 0;
  for (let k = 0; k < KILLS; k++) {
    const { child } = await startWorker(['crash', dialect, location, stateDir, String(HOSTS), String(k + 1)]);
    await new Promise((r) => setTimeout(r, 20 + Math.floor(rnd() * 280)));
    child.kill('SIGKILL');
    await exited(child);
    const { instances } = await restartAndCheck(open, stateDir);
    maxInstances = Math.max(maxInstances, instances);
  }
  expect(maxInstances).toBeGreaterThan(0);
}

describe('crash safety: SIGKILL at random points, then reconciliation', () => {
  it(`SQLite: ${KILLS} kills during creates, deletes and reboots leave nothing stuck or leaked`, async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-crash-')), 'db.sqlite');
    await killLoop('sqlite', path, () => openSqliteStores({ path }));
  }, 900_000);

  it.skipIf(!postgresAvailable)(
    `PostgreSQL: ${KILLS} kills leave nothing stuck or leaked`,
    async () => {
      const schema = freshSchema();
      try {
        await killLoop('postgres', schema, () =>
          openPostgresStores({ url: pgUrl, schema, staleReservationMs: 0, poolSize: 2 }),
        );
      } finally {
        await dropSchema(schema);
      }
    },
    900_000,
  );
});
