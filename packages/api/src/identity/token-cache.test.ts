import { describe, expect, it } from 'vitest';
import { testClock } from './identity.test-helper.js';
import { TokenCache } from './token-cache.js';

const entry = (userId: string, auditId: string, expiresAt: number) => ({
  userId,
  auditIds: [auditId],
  expiresAt,
});

describe('TokenCache', () => {
  it('keeps entries for its lifetime, never past the token’s expiry, and at most `max` of them', () => {
    const clock = testClock(1_000_000);
    const cache = new TokenCache({ ttlMs: 5_000, max: 3, clock: clock.fn });
    cache.set('t1', entry('u1', 'a1', clock.now + 60_000), cache.generation);
    cache.set('t2', entry('u2', 'a2', clock.now + 1_000), cache.generation);
    expect(cache.get('t1')?.userId).toBe('u1');
    clock.advance(1_000);
    expect(cache.get('t2')).toBeUndefined(); // the token expired before the cache lifetime
    clock.advance(4_000);
    expect(cache.get('t1')).toBeUndefined();
    for (const t of ['a', 'b', 'c', 'd']) cache.set(t, entry(t, t, clock.now + 60_000), cache.generation);
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBeUndefined(); // the oldest went first
    expect(cache.get('d')?.userId).toBe('d');
  });

  it('drops by user and by audit id, and refuses an answer computed before a drop', () => {
    const clock = testClock();
    const cache = new TokenCache({ clock: clock.fn });
    cache.set('t1', entry('u1', 'a1', clock.now + 60_000), cache.generation);
    cache.set('t2', entry('u2', 'a2', clock.now + 60_000), cache.generation);
    cache.dropUser('u1');
    expect(cache.get('t1')).toBeUndefined();
    expect(cache.get('t2')).toBeDefined();
    cache.dropAudit('a2');
    expect(cache.get('t2')).toBeUndefined();
    const before = cache.generation;
    cache.clear(); // e.g. a revocation while a validation was in flight
    cache.set('t3', entry('u3', 'a3', clock.now + 60_000), before);
    expect(cache.get('t3')).toBeUndefined();
  });

  it('is off with a lifetime of 0', () => {
    const clock = testClock();
    const cache = new TokenCache({ ttlMs: 0, clock: clock.fn });
    cache.set('t', entry('u', 'a', clock.now + 60_000), cache.generation);
    expect(cache.get('t')).toBeUndefined();
  });
});
