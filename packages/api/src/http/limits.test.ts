import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ApiHarness, apiHarness } from '../testing/api-harness.test-helper.js';
import { route } from './route.js';

describe('resource limits of the HTTP layer', () => {
  let h: ApiHarness;
  let handled = 0;
  beforeAll(async () => {
    h = await apiHarness(
      () => [
        route({
          method: 'POST',
          url: '/v2.1/sink',
          service: 'compute',
          summary: 'accepts a body',
          body: z.unknown(),
          handler: async () => {
            handled++;
            return { status: 204 };
          },
        }),
      ],
      { app: { rateLimit: { perSecond: 1, burst: 3 }, bodyLimit: 1024 } },
    );
  });
  afterAll(() => h.close());

  it('refuses a body over the limit with 413 before the handler runs', async () => {
    const before = handled;
    const r = await h.call('admin', {
      method: 'POST',
      url: '/v2.1/sink',
      payload: { big: 'x'.repeat(4096) },
    });
    expect(r.statusCode).toBe(413);
    expect(r.json().overLimit.code).toBe(413);
    expect(handled).toBe(before);
  });

  it('limits each caller on its own, with Retry-After', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await h.call('alice', { method: 'POST', url: '/v2.1/sink' })).statusCode);
    expect(statuses).toEqual([204, 204, 204, 429]);
    const limited = await h.call('alice', { method: 'POST', url: '/v2.1/sink' });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited.json().overLimit.message).toMatch(/Rate limit/);
    expect((await h.call('bob', { method: 'POST', url: '/v2.1/sink' })).statusCode).toBe(204);
  });
});
