/**
 * A child process of the scheduler's multi-process tests: an engine with `@nova-lfs/scheduler` on
 * a PostgreSQL schema shared with other workers, over fake hosts `h0..h<n-1>`. It prints `ready`,
 * waits for `go` on stdin, runs its mode, prints one JSON summary line and exits.
 *
 * argv: schema hosts vcpusPerHost mode creates [cycles]
 * - `cycles`: `cycles` times, `creates` concurrent creates, then delete them all (fill and free);
 * - `group`: `creates` concurrent creates joining the server group `web`, kept.
 */
import 'reflect-metadata';
import { createInterface } from 'node:readline';
import { createCompute, type Instance } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { openPostgresStores } from '@nova-lfs/store-sql';
import { schedulerFactory } from './create-scheduler.js';
import type { PluginScheduler } from './plugin-scheduler.js';

const [schema, hostText, vcpuText, mode, createsText, cyclesText] = process.argv.slice(2);
const s = await openPostgresStores({ schema: schema!, poolSize: 4, staleReservationMs: 30_000 });
let scheduler: PluginScheduler | undefined;
const compute = await createCompute({
  stores: s.stores,
  quota: s.quota,
  scheduler: (deps) => {
    scheduler = schedulerFactory()(deps);
    return scheduler;
  },
  flavors: [{ id: 'm1', vcpus: 1, ramMb: 256 }],
  hosts: Array.from({ length: Number(hostText) }, (_, i) => ({
    id: `h${i}`,
    driver: new FakeDriver({
      hostname: `h${i}`,
      vcpus: Number(vcpuText),
      ramMb: 65_536,
      latencyMs: { spawn: 2, destroy: 1 },
    }),
  })),
});
await compute.images
  .register(
    { id: 'img', name: 'img', diskFormat: 'raw', sha256: '3'.repeat(64) },
    { kind: 'bytes', bytes: new Uint8Array() },
  )
  .catch((e: { code?: string }) => {
    if (e.code !== 'NLFS_DUPLICATE') throw e;
  });
const req = { name: 'vm', projectId: 'p', userId: 'u', flavorId: 'm1', imageId: 'img' };

const lines = createInterface({ input: process.stdin });
const go = new Promise<void>((resolve) => lines.on('line', (l) => l === 'go' && resolve()));
process.stdout.write('ready\n');
await go;

const summary = { active: 0, errors: {} as Record<string, number>, activeHosts: [] as string[] };
const tally = (instances: readonly Instance[]) => {
  for (const i of instances) {
    if (i.vmState === 'active') {
      summary.active++;
      summary.activeHosts.push(i.hostId!);
    } else {
      const code = i.fault?.code ?? i.vmState;
      summary.errors[code] = (summary.errors[code] ?? 0) + 1;
    }
  }
};
const creates = Number(createsText);
if (mode === 'cycles') {
  for (let c = 0; c < Number(cyclesText); c++) {
    const made = (await Promise.all(Array.from({ length: creates }, () => compute.create(req)))).flat();
    tally(made);
    await Promise.all(made.map((i) => compute.delete(i.id)));
  }
} else {
  const group = { ...req, hints: { group: 'web' } };
  tally((await Promise.all(Array.from({ length: creates }, () => compute.create(group)))).flat());
}
process.stdout.write(`${JSON.stringify({ ...summary, feed: scheduler?.feedStats })}\n`);
lines.close();
await compute.close();
await s.close();
process.exit(0);
