import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStores } from '@nova-lfs/store-sql';
import { describe, expect, it } from 'vitest';
import { runQuickstart } from './quickstart.js';

describe('quickstart example', () => {
  it('boots, reschedules a failed build, hits quota and deletes everything, on durable SQLite', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nlfs-quickstart-'));
    const lines: string[] = [];
    const summary = await runQuickstart({
      log: (l) => lines.push(l),
      latencyMs: 1,
      storage: { kind: 'sqlite', dataDir },
    });
    expect(summary.leftovers).toBe(0);
    expect(summary.booted).toBe(4);
    expect(summary.rescheduled).toBe(1);
    expect(summary.quotaRejected).toBe(true);
    expect(summary.finalInstances).toBe(0);
    expect(Object.values(summary.states).every((s) => s.startsWith('active@'))).toBe(true);
    expect(summary.states.db).toMatch(/@rack2-/);
    expect(summary.dbHistory).toEqual([
      'create:success',
      'stop:success',
      'start:success',
      'pause:success',
      'unpause:success',
      'reboot_hard:success',
      'delete:success',
    ]);
    expect(lines[1]).toBe(`state: SQLite ${dataDir}/nova-lfs.sqlite\n`);
    expect(lines.some((l) => l.includes('rescheduled rack1-a ->'))).toBe(true);
    expect(lines.some((l) => l.includes('NLFS_QUOTA_EXCEEDED'))).toBe(true);
    expect(lines.at(-2)).toMatch(/0 instances left.*"instances":0/);

    // the engine closed its storage; what it wrote is there for the next process
    const stored = await openSqliteStores({ dataDir });
    try {
      expect(await stored.stores.instances.list()).toEqual([]);
      expect(await stored.claims.list()).toEqual([]);
      // read through the durable event log (a row may hold several events of one instance)
      const logged = await stored.eventLog.read(0, 100_000);
      const recorded = async (type: string) => logged.filter((l) => l.event.type === type).length;
      expect(await recorded('instance.created')).toBe(4); // 3 web + db; the refused batch never was
      expect(await recorded('instance.deleted')).toBe(4);
    } finally {
      await stored.close();
    }
  });
});
