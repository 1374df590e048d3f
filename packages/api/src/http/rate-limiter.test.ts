import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.js';

describe('RateLimiter', () => {
  it('allows a burst, then asks to wait, then refills with time', () => {
    let now = 0;
    const limiter = new RateLimiter({ perSecond: 2, burst: 3, clock: () => now });
    expect([limiter.take('u'), limiter.take('u'), limiter.take('u')]).toEqual([0, 0, 0]);
    expect(limiter.take('u')).toBe(1);
    expect(limiter.take('other')).toBe(0);
    now += 500;
    expect(limiter.take('u')).toBe(0);
    expect(limiter.take('u')).toBeGreaterThanOrEqual(1);
  });

  it('forgets the least recently seen callers beyond its bound', () => {
    const limiter = new RateLimiter({ perSecond: 1, burst: 1, maxCallers: 2, clock: () => 0 });
    limiter.take('a');
    limiter.take('b');
    limiter.take('a');
    limiter.take('c');
    expect(limiter.size).toBe(2);
    expect(limiter.take('a')).toBe(1); // still tracked: its bucket is empty
    expect(limiter.take('b')).toBe(0); // forgotten: starts full
  });

  it('refuses nonsense settings', () => {
    expect(() => new RateLimiter({ perSecond: 0 })).toThrow(RangeError);
    expect(() => new RateLimiter({ perSecond: Number.NaN })).toThrow(RangeError);
  });
});
