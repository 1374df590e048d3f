import { describe, expect, it } from 'vitest';
import { backoffDelay, defaultBusBackoff, ReconnectDelays } from './backoff.js';

describe('reconnect backoff', () => {
  it('doubles from the initial delay up to the cap, without jitter at the midpoint', () => {
    const mid = () => 0.5;
    expect([0, 1, 2, 3, 10, 100].map((a) => backoffDelay(a, defaultBusBackoff, mid))).toEqual([
      250, 500, 1000, 2000, 10_000, 10_000,
    ]);
  });

  it('spreads each delay by at most ±jitter', () => {
    const b = { initialDelayMs: 1000, maxDelayMs: 1000, factor: 2, jitter: 0.2 };
    expect(backoffDelay(0, b, () => 0)).toBe(800);
    expect(backoffDelay(0, b, () => 0.999_999)).toBe(1200);
  });

  it('hands the client the same delay until it passed (the client asks on every turn of its dial loop)', () => {
    let now = 0;
    const delays = new ReconnectDelays(
      defaultBusBackoff,
      () => now,
      () => 0.5,
    );
    // turns of the NATS client's dial loop 10 ms apart: it dials once its last dial is older than the delay
    const dials: number[] = [];
    let lastDial = -Infinity;
    for (now = 0; now <= 4000; now += 10) {
      if (lastDial + delays.next() <= now) {
        dials.push(now);
        lastDial = now;
      }
    }
    // 250, 500, 1000, 2000 ms apart (at most two turns late), not run away to the 10 s cap
    const gaps = dials.slice(1).map((d, i) => d - dials[i]!);
    expect(gaps.length).toBeGreaterThanOrEqual(3);
    for (const [i, gap] of gaps.entries()) {
      expect(gap).toBeGreaterThanOrEqual(250 * 2 ** i);
      expect(gap).toBeLessThanOrEqual(2 * 250 * 2 ** i + 20);
    }
    delays.reset();
    now += 10_000;
    expect(delays.next()).toBe(250);
  });
});
