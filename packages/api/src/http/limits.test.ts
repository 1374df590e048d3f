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
        ...(['identity', 'image'] as const).map((service) =>
          route({
            method: 'POST',
            url: service === 'identity' ? '/v3/sink' : '/image/v2/sink',
            service,
            summary: 'accepts a body',
            body: z.unknown(),
            handler: async () => {
              handled++;
              return { status: 204 };
            },
          }),
        ),
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

  it('answers a refusal made before the handler in the format of the path’s service', async () => {
    const before = handled;
    const big = { payload: { big: 'x'.repeat(4096) } };
    const malformed = { headers: { 'content-type': 'application/json' }, payload: '{"x":' };
    const identity = await h.call('admin', { method: 'POST', url: '/v3/sink', ...big });
    expect(identity.statusCode).toBe(413);
    expect(identity.json()).toEqual({
      error: { code: 413, title: 'Request Entity Too Large', message: expect.any(String) },
    });
    const image = await h.call('admin', { method: 'POST', url: '/image/v2/sink', ...big });
    expect(image.statusCode).toBe(413);
    expect(image.json()).toEqual({
      code: 413,
      title: 'Request Entity Too Large',
      message: expect.any(String),
    });
    const badJson = await h.call('admin', { method: 'POST', url: '/v3/sink', ...malformed });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json().error.code).toBe(400);
    const badImageJson = await h.call('admin', { method: 'POST', url: '/image/v2/sink', ...malformed });
    expect(badImageJson.json()).toMatchObject({ code: 400, title: 'Bad Request' });
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
