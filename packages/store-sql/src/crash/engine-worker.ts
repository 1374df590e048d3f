/**
 * A child process for the crash and multi-process tests: opens the SQL stores given on the command
 * line, builds an engine over fake hosts whose guests persist to files, prints `ready`, then either
 * churns creates / deletes / reboots until it is killed (`crash`), or makes N concurrent creates,
 * prints a JSON summary and exits (`multi`).
 *
 * argv: mode dialect location stateDir hosts seed [creates]
 */
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createCompute } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { schedulerFactory } from '@nova-lfs/scheduler';
import { openPostgresStores, openSqliteStores } from '../open-stores.js';

const [mode, dialect, location, stateDir, hostCount, seedText, createsText] = process.argv.slice(2);
let seed = Number(seedText);
const random = (): number => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
};

const s =
  dialect === 'sqlite'
    ? await openSqliteStores({ path: location! })
    : await openPostgresStores({
        schema: location!,
        staleReservationMs: mode === 'crash' ? 0 : 30_000,
        poolSize: 4,
      });
const drivers = Array.from(
  { length: Number(hostCount) },
  (_, i) =>
    new FakeDriver({
      hostname: `h${i}`,
      vcpus: 4,
      ramMb: 8192,
      ...(mode === 'crash'
        ? {
            statePath: join(stateDir!, `h${i}.json`),
            latencyMs: { spawn: 15, destroy: 10, reboot: 10, powerOff: 10, powerOn: 10 },
          }
        : {}),
    }),
);
const compute = await createCompute({
  stores: s.stores,
  quota: s.quota,
  scheduler: schedulerFactory({ maxInFlightBuilds: 100 }),
  flavors: [{ id: 'm1', vcpus: 1, ramMb: 512 }],
  hosts: drivers.map((driver, i) => ({ id: `h${i}`, driver })),
  engine: { powerOffTimeoutMs: 100 },
});
if (!(await compute.images.get('img'))) {
  await compute.images.register(
    { id: 'img', name: 'img', diskFormat: 'raw', sha256: '2'.repeat(64) },
    { kind: 'bytes', bytes: new Uint8Array() },
  );
}
const req = { name: 'vm', projectId: 'p', userId: 'u', flavorId: 'm1', imageId: 'img' };
process.stdout.write('ready\n');

if (mode === 'multi') {
  // all workers reconcile first, then the parent says go (a file), so that start-up reconciliation
  // of one process never races another's creates (each host's agent reconciles its own, later issue)
  const giveUp = Date.now() + 120_000;
  while (!existsSync(join(stateDir!, 'go'))) {
    if (Date.now() > giveUp) process.exit(2);
    await new Promise((r) => setTimeout(r, 20));
  }
  const n = Number(createsText ?? 10);
  const results = await Promise.allSettled(Array.from({ length: n }, () => compute.create(req)));
  const summary = { active: 0, error: 0, quotaRejected: 0, other: [] as string[] };
  for (const r of results) {
    if (r.status === 'fulfilled') {
      if (r.value[0]!.vmState === 'active') summary.active++;
      else summary.error++;
    } else if ((r.reason as { code?: string }).code === 'NLFS_QUOTA_EXCEEDED') summary.quotaRejected++;
    else summary.other.push(String((r.reason as Error).message));
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  await s.close();
  process.exit(0);
}

// crash mode: churn until killed
const churn = async (): Promise<never> => {
  for (;;) {
    const all = await compute.list();
    const pick = all[Math.floor(random() * all.length)];
    const r = random();
    try {
      if (r < 0.45 || !pick) await compute.create(req);
      else if (r < 0.75) await compute.delete(pick.id);
      else if (r < 0.9) await compute.reboot(pick.id, 'hard');
      else if (pick.vmState === 'stopped') await compute.powerOn(pick.id);
      else await compute.powerOff(pick.id);
    } catch {
      // refused actions and quota rejections are part of the churn
    }
  }
};
await Promise.all([churn(), churn(), churn()]);
