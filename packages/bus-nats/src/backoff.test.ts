import { describe, expect, it } from 'vitest';
import { backoffDelay, defaultBusBackoff } from './backoff.js';

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
});
