import { describe, expect, it } from 'vitest';
import { IdempotencyCache } from './idempotency-cache.js';

describe('IdempotencyCache', () => {
  it('runs a key once: a call while it runs joins it, a later one gets its outcome', async () => {
    const cache = new IdempotencyCache<number>();
    let runs = 0;
    let release: (n: number) => void = () => undefined;
    const run = () => {
      runs++;
      return new Promise<number>((r) => {
        release = r;
      });
    };
    const a = cache.run('k', run);
    const b = cache.run('k', run);
    release(42);
    expect(await a).toBe(42);
    expect(await b).toBe(42);
    expect(await cache.run('k', run)).toBe(42);
    expect(runs).toBe(1);
  });

  it('forgets outcomes it is told not to remember, and rejections', async () => {
    const cache = new IdempotencyCache<number>();
    let runs = 0;
    await cache.run(
      'k',
      async () => ++runs,
      () => false,
    );
    await cache.run(
      'k',
      async () => ++runs,
      () => false,
    );
    await expect(cache.run('r', () => Promise.reject(new Error('x')))).rejects.toThrow();
    expect(await cache.run('r', async () => 7)).toBe(7);
    expect(runs).toBe(2);
  });

  it('keeps at most maxEntries finished calls and forgets them after ttlMs, never a running one', async () => {
    let now = 0;
    const cache = new IdempotencyCache<number>({ maxEntries: 3, ttlMs: 1000 }, () => now);
    const running = cache.run('slow', () => new Promise<number>(() => undefined));
    for (let i = 0; i < 10; i++) await cache.run(`k${i}`, async () => i);
    await Promise.resolve();
    expect(cache.size).toBeLessThanOrEqual(4);
    let reran = false;
    await cache.run('k9', async () => {
      reran = true;
      return 0;
    });
    expect(reran).toBe(false);
    now = 2000;
    expect(await cache.run('k9', async () => -1)).toBe(-1);
    expect(cache.run('slow', async () => 0)).toBe(running);
  });
});
