import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { negotiateMicroversion, sendMicroversion } from '../compute/microversion.js';
import { type ApiHarness, apiHarness } from '../testing/api-harness.test-helper.js';
import { route } from './route.js';

describe('the HTTP layer', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await apiHarness((services) => [
      route({
        method: 'POST',
        url: '/v2.1/echo',
        service: 'compute',
        summary: 'echo',
        body: z.object({ thing: z.object({ name: z.string().max(5) }) }).optional(),
        handler: async ({ body, auth, reply, request }) => {
          sendMicroversion(reply, negotiateMicroversion(request.headers));
          services.policy.authorize('project_member_or_admin', auth!, { project_id: 'p1' });
          return { status: 200, body: { got: body ?? null } };
        },
      }),
      route({
        method: 'GET',
        url: '/v2.1/boom',
        service: 'compute',
        summary: 'fails',
        handler: async () => {
          throw new Error('secret /var/lib/path SELECT * FROM x');
        },
      }),
    ]);
  });
  afterAll(() => h.close());

  it('asks for a token in Keystone words and names the identity endpoint', async () => {
    const r = await h.call(null, { method: 'POST', url: '/v2.1/echo' });
    expect(r.statusCode).toBe(401);
    expect(r.json()).toEqual({
      error: {
        code: 401,
        title: 'Unauthorized',
        message: 'The request you have made requires authentication.',
      },
    });
    expect(r.headers['www-authenticate']).toBe('Keystone uri="http://127.0.0.1:8774/v3"');
    expect(r.headers['x-openstack-request-id']).toMatch(/^req-[0-9a-f-]{36}$/);
    expect(r.headers['x-compute-request-id']).toBe(r.headers['x-openstack-request-id']);
    expect((await h.call('forged', { method: 'POST', url: '/v2.1/echo' })).statusCode).toBe(401);
  });

  it('takes an empty body and an empty Accept header', async () => {
    const r = await h.call('alice', {
      method: 'POST',
      url: '/v2.1/echo',
      headers: { 'content-type': 'application/json', accept: '' },
      payload: '',
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ got: null });
  });

  it('names the invalid field and refuses malformed JSON', async () => {
    const bad = await h.call('alice', {
      method: 'POST',
      url: '/v2.1/echo',
      payload: { thing: { name: 'far too long' } },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().badRequest.message).toContain('body.thing.name');
    const malformed = await h.call('alice', {
      method: 'POST',
      url: '/v2.1/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"thing": ',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().badRequest.code).toBe(400);
  });

  it('refuses by policy with 403 and lets the project member through', async () => {
    expect((await h.call('bob', { method: 'POST', url: '/v2.1/echo' })).json()).toEqual({
      forbidden: { code: 403, message: "Policy doesn't allow project_member_or_admin to be performed." },
    });
    expect((await h.call('rita', { method: 'POST', url: '/v2.1/echo' })).statusCode).toBe(403);
    expect((await h.call('admin', { method: 'POST', url: '/v2.1/echo' })).statusCode).toBe(200);
  });

  it('negotiates microversions by both headers and answers 406 out of range', async () => {
    const modern = await h.call('alice', {
      method: 'POST',
      url: '/v2.1/echo',
      headers: { 'openstack-api-version': 'compute 2.47', 'x-openstack-nova-api-version': '2.3' },
    });
    expect(modern.headers['openstack-api-version']).toBe('compute 2.47');
    expect(modern.headers['x-openstack-nova-api-version']).toBe('2.47');
    const none = await h.call('alice', { method: 'POST', url: '/v2.1/echo' });
    expect(none.headers['x-openstack-nova-api-version']).toBe('2.1');
    const far = await h.call('alice', {
      method: 'POST',
      url: '/v2.1/echo',
      headers: { 'x-openstack-nova-api-version': '2.999' },
    });
    expect(far.statusCode).toBe(406);
    expect(far.json().computeFault.message).toBe(
      'Version 2.999 is not supported by the API. Minimum is 2.1 and maximum is 2.73.',
    );
    const junk = await h.call('alice', {
      method: 'POST',
      url: '/v2.1/echo',
      headers: { 'x-openstack-nova-api-version': 'two' },
    });
    expect(junk.statusCode).toBe(400);
  });

  it('never shows internals of an unexpected failure', async () => {
    const r = await h.call('admin', { method: 'GET', url: '/v2.1/boom' });
    expect(r.statusCode).toBe(500);
    expect(r.body).not.toContain('secret');
    expect(r.body).not.toContain('SELECT');
    expect(r.json().computeFault.code).toBe(500);
  });

  it('answers unknown paths with itemNotFound and documents routes in OpenAPI', async () => {
    expect(
      (await h.call('alice', { method: 'GET', url: '/v2.1/nothing-here' })).json().itemNotFound.code,
    ).toBe(404);
    const doc = (await h.call(null, { method: 'GET', url: '/openapi.json' })).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/v2.1/echo'].post.requestBody).toBeDefined();
  });
});
