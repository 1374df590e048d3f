import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { flavorSchema } from '@nova-lfs/core';
import { openPostgresStores } from '@nova-lfs/store-sql';
import { describe, expect, it } from 'vitest';
import {
  dropSchema,
  freshSchema,
  pgUrl,
  postgresAvailable,
} from '../../store-sql/src/sql-env.test-helper.js';

const WORKERS = 4;
const worker = fileURLToPath(new URL('./placement-worker.test-helper.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

interface Summary {
  active: number;
  errors: Record<string, number>;
  activeHosts: string[];
  feed?: { reads: number; snapshots: number; changes: number };
}

/** Starts a worker and resolves once it printed `ready` (its engine is up). */
function start(args: readonly string[]): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(
    process.execPath,
    ['--conditions=@nova-lfs/source', '--import', 'tsx', worker, ...args],
    {
      cwd: repoRoot,
      env: { ...process.env, NOVA_LFS_PG_URL: pgUrl },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve({ child, output: () => out });
    });
    child.on('exit', (code) => {
      if (!out.includes('ready\n'))
        reject(new Error(`worker exited (${code}) before ready: ${err.slice(-2000)}`));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.on('exit', () => resolve()));
}

/** Runs WORKERS workers on one schema, all starting their work at once; their summaries. */
async function runWorkers(schema: string, args: readonly string[]): Promise<Summary[]> {
  const workers = await Promise.all(Array.from({ length: WORKERS }, () => start([schema, ...args])));
  const deadline = setTimeout(() => {
    for (const w of workers) w.child.kill('SIGKILL');
  }, 150_000);
  for (const w of workers) w.child.stdin!.write('go\n');
  await Promise.all(workers.map((w) => exited(w.child)));
  clearTimeout(deadline);
  return workers.map((w) => {
    const last = w.output().trim().split('\n').at(-1) ?? '';
    if (!last.startsWith('{')) throw new Error(`worker printed no summary: ${w.output()}`);
    return JSON.parse(last) as Summary;
  });
}

async function sharedSchema(withGroup: boolean): Promise<{ schema: string; close: () => Promise<void> }> {
  const schema = freshSchema();
  const s = await openPostgresStores({ url: pgUrl, schema });
  await s.quota.setLimits('p', { instances: -1, cores: -1, ramMb: -1 });
  // the workers' flavor exists before they start (registerCore adds a missing flavor with a
  // read-then-insert, which concurrent processes race)
  await s.stores.flavors.add(flavorSchema.parse({ id: 'm1', name: 'm1', vcpus: 1, ramMb: 256 }));
  if (withGroup) {
    await s.stores.groups.add({
      id: 'web',
      name: 'web',
      projectId: 'p',
      policy: 'anti-affinity',
      members: [],
    });
  }
  await s.close();
  return { schema, close: () => dropSchema(schema) };
}

describe.skipIf(!postgresAvailable)(`${WORKERS} engine processes placing on one PostgreSQL`, () => {
  it('fill-and-free cycles never give a false NoValidHost: each learns the others’ releases', async () => {
    // 4 hosts x 4 vCPU = 16 one-vCPU instances; each worker holds at most 4 at a time, so the
    // database always has room for every create, but only on hosts the others just freed
    const { schema, close } = await sharedSchema(false);
    try {
      const results = await runWorkers(schema, ['4', '4', 'cycles', '4', '12']);
      expect(results.map((r) => r.errors)).toEqual(Array(WORKERS).fill({}));
      expect(results.reduce((n, r) => n + r.active, 0)).toBe(WORKERS * 4 * 12);
      // the releases were learned from the feed, not by reloading every claim each time
      for (const r of results) expect(r.feed!.changes).toBeGreaterThan(0);
    } finally {
      await close();
    }
  }, 180_000);

  // 16 members race for 12 hosts: 12 go active on distinct hosts, 4 find no valid host; with 16
  // hosts, every member finds one (no false NoValidHost under contention either)
  for (const [hostCount, refused] of [
    [12, { NLFS_NO_VALID_HOST: 4 }],
    [16, {}],
  ] as const) {
    it(`concurrent anti-affinity creates from different processes never share a host (16 members, ${hostCount} hosts)`, async () => {
      const { schema, close } = await sharedSchema(true);
      try {
        const results = await runWorkers(schema, [String(hostCount), '8', 'group', '4']);
        const hosts = results.flatMap((r) => r.activeHosts);
        expect(hosts).toHaveLength(Math.min(16, hostCount));
        expect(new Set(hosts).size).toBe(hosts.length);
        const errors: Record<string, number> = {};
        for (const r of results)
          for (const [c, n] of Object.entries(r.errors)) errors[c] = (errors[c] ?? 0) + n;
        expect(errors).toEqual(refused);
      } finally {
        await close();
      }
    }, 180_000);
  }
});
