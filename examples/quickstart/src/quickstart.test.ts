import { describe, expect, it } from 'vitest';
import { runQuickstart } from './quickstart.js';

describe('quickstart example', () => {
  it('boots, reschedules a failed build, hits quota and deletes everything', async () => {
    const lines: string[] = [];
    const summary = await runQuickstart({ log: (l) => lines.push(l), latencyMs: 1 });
    expect(summary.booted).toBe(4);
    expect(summary.rescheduled).toBe(1);
    expect(summary.quotaRejected).toBe(true);
    expect(summary.finalInstances).toBe(0);
    expect(Object.values(summary.states).every((s) => s.startsWith('active@'))).toBe(true);
    expect(summary.states.db).toMatch(/@rack2-/);
    expect(lines.some((l) => l.includes('rescheduled rack1-a ->'))).toBe(true);
    expect(lines.some((l) => l.includes('NLFS_QUOTA_EXCEEDED'))).toBe(true);
    expect(lines.at(-1)).toMatch(/0 instances left.*"instances":0.*0 claims held/);
  });
});
