import type { HostLivenessChange } from '@nova-lfs/bus-nats';
import type { EvacuateReport } from '@nova-lfs/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startEvacuatePolicy } from './evacuate-policy.js';

/** A liveness stream the test drives, and an engine that records what it is asked to evacuate. */
function harness() {
  const listeners = new Set<(c: HostLivenessChange) => void>();
  const evacuated: string[] = [];
  const warnings: string[] = [];
  const policy = startEvacuatePolicy(
    {
      evacuate: async (hostId: string): Promise<EvacuateReport> => {
        evacuated.push(hostId);
        if (hostId === 'broken') throw new Error('no host fits');
        return { hostId, instances: [] };
      },
    },
    {
      subscribe(next) {
        listeners.add(next);
        return { unsubscribe: () => listeners.delete(next) };
      },
    },
    { afterMs: 1000, logger: { warn: (m) => void warnings.push(m) } },
  );
  const change = (hostId: string, up: boolean) => {
    for (const l of listeners)
      l({ hostId, up, reason: up ? 'beat' : 'silent', lastBeatAt: 0, at: Date.now() });
  };
  return { policy, change, evacuated, warnings, listeners };
}

describe('the automatic evacuate policy', () => {
  afterEach(() => vi.useRealTimers());

  it('evacuates a host down for afterMs, once; not one that came back before', async () => {
    vi.useFakeTimers();
    const h = harness();
    h.change('h1', false);
    h.change('h2', false);
    h.change('h1', false); // a repeated down does not restart the wait
    expect(h.policy.pending).toEqual(new Set(['h1', 'h2']));
    await vi.advanceTimersByTimeAsync(600);
    h.change('h2', true); // back in time: left alone
    await vi.advanceTimersByTimeAsync(400);
    expect(h.evacuated).toEqual(['h1']);
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.evacuated).toEqual(['h1']);
    expect(h.warnings).toEqual(['host evacuated']);
    expect(h.policy.pending).toEqual(new Set());
  });

  it('reports a failed evacuation, and stop() cancels the pending ones and unsubscribes', async () => {
    vi.useFakeTimers();
    const h = harness();
    h.change('broken', false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.warnings).toEqual(['host evacuation failed']);
    h.change('h3', false);
    h.policy.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.evacuated).toEqual(['broken']);
    expect(h.listeners.size).toBe(0);
  });
});
