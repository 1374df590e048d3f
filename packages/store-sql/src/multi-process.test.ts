import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostSchema } from '@nova-lfs/core';
import { describe, expect, it } from 'vitest';
import { exited, startWorker } from './crash/crash-harness.js';
import { openPostgresStores } from './open-stores.js';
import { dropSchema, freshSchema, pgUrl, postgresAvailable } from './sql-env.test-helper.js';

const WORKERS = 4;

async function runWorkers(schema: string, hosts: number, creates: number) {
  const dir = mkdtempSync(join(tmpdir(), 'nlfs-multi-'));
  const workers = await Promise.all(
    Array.from({ length: WORKERS }, (_, w) =>
      startWorker(['multi', 'postgres', schema, dir, String(hosts), String(w + 1), String(creates)]),
    ),
  );
  writeFileSync(join(dir, 'go'), '');
  const deadline = setTimeout(() => {
    for (const w of workers) w.child.kill('SIGKILL');
  }, 120_000);
  await Promise.all(workers.map((w) => exited(w.child)));
  clearTimeout(deadline);
  return workers.map((w) => {
    const line = w
      .output()
      .split('\n')
      .find((l) => l.startsWith('{'));
    if (!line) throw new Error(`worker printed no summary: ${w.output()}`);
    return JSON.parse(line) as { active: number; error: number; quotaRejected: number; other: string[] };
  });
}

describe.skipIf(!postgresAvailable)(`${WORKERS} processes creating against one PostgreSQL`, () => {
  it('admit exactly the project quota', async () => {
    const schema = freshSchema();
    const s = await openPostgresStores({ url: pgUrl, schema });
    try {
      await s.quota.setLimits('p', { instances: 9 });
      const results = await runWorkers(schema, 4, 6);
      const active = results.reduce((a, r) => a + r.active, 0);
      const refused = results.reduce((a, r) => a + r.quotaRejected, 0);
      expect(results.flatMap((r) => r.other)).toEqual([]);
      expect(active).toBe(9);
      expect(refused).toBe(WORKERS * 6 - 9);
      expect((await s.stores.instances.list()).length).toBe(9);
      expect((await s.quota.usage('p')).inUse.instances).toBe(9);
    } finally {
      await s.close();
      await dropSchema(schema);
    }
  }, 180_000);

  it('never over-commit a host: the losers of a claim race move on, the rest fail with no valid host', async () => {
    const schema = freshSchema();
    const s = await openPostgresStores({ url: pgUrl, schema });
    try {
      await s.quota.setLimits('p', { instances: -1, cores: -1, ramMb: -1 });
      // 2 hosts x 4 vCPU: room for 8 one-vCPU instances among 4 x 5 requests
      const results = await runWorkers(schema, 2, 5);
      const active = results.reduce((a, r) => a + r.active, 0);
      const errors = results.reduce((a, r) => a + r.error, 0);
      expect(results.flatMap((r) => r.other)).toEqual([]);
      expect(active).toBe(8);
      expect(errors).toBe(WORKERS * 5 - 8);
      const claims = await s.claims.list();
      for (const h of ['h0', 'h1']) {
        expect(claims.filter((c) => c.hostId === h)).toHaveLength(4);
        expect((await s.claims.usage(h)).VCPU).toBe(4);
      }
      const instances = await s.stores.instances.list();
      for (const i of instances.filter((x) => x.vmState === 'error'))
        expect(i.fault?.code).toMatch(/NLFS_NO_VALID_HOST|NLFS_CLAIM_CONFLICT/);
      void hostSchema;
    } finally {
      await s.close();
      await dropSchema(schema);
    }
  }, 180_000);
});
