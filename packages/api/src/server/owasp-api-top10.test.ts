import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type ApiServerHarness,
  apiServerHarness,
  computeVersion,
  harnessAdminPassword,
  passwordAuthBody,
  seedTenants,
  type Tenants,
  waitForServerStatus,
} from './api-server.test-helper.js';

/**
 * The OWASP API Security Top 10 (2023), walked against the whole API as `nova-lfs serve` builds
 * it (`createApiServer`: Identity v3, Compute v2.1, Image v2, /metrics, /openapi.json) with real
 * Keystone tokens over FAKE hosts. Each `it` is one risk; its assertions are the answers.
 */

const identityUri = 'Keystone uri="http://127.0.0.1:8774/v3"';
const jsonPatch = { 'content-type': 'application/openstack-images-v2.1-json-patch' };

/** Distinctive values of project A's objects: no answer to project B may contain them. */
const secrets = {
  serverName: 'a-secret-server-7f3c',
  metaValue: 'a-secret-meta-91cd',
  imageName: 'a-secret-image-4e2b',
  imageBytes: 'A-SECRET-IMAGE-BYTES-5d1a',
  groupName: 'a-secret-group-0b7e',
  keyName: 'a-secret-key-c2f9',
} as const;

/** What must never show in an error: stack frames, source paths, SQL, exception class names. */
const internals: readonly RegExp[] = [
  /\/work\//,
  /node_modules/,
  /\bat \S+ \(/,
  /\(\S+:\d+:\d+\)/,
  /\n\s+at /,
  /\.(ts|js|mjs|cjs):\d+/,
  /\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b/,
  /sqlite|SQLITE_|better-sqlite3|kysely/i,
  /\b(TypeError|ReferenceError|RangeError|SyntaxError)\b/,
  /"stack"/,
];

function faultShape(service: 'compute' | 'image' | 'identity', status: number, body: unknown): void {
  if (service === 'identity' || status === 401) {
    expect(body).toEqual({
      error: { code: status, message: expect.any(String), title: expect.any(String) },
    });
    return;
  }
  if (service === 'image') {
    expect(body).toEqual({ code: status, title: expect.any(String), message: expect.any(String) });
    return;
  }
  const keys = Object.keys(body as object);
  expect(keys).toHaveLength(1);
  expect((body as Record<string, unknown>)[keys[0]!]).toMatchObject({
    code: status,
    message: expect.any(String),
  });
}

function serviceOf(url: string): 'compute' | 'image' | 'identity' {
  if (url.startsWith('/v3')) return 'identity';
  if (url.startsWith('/image')) return 'image';
  return 'compute';
}

function expectNoInternals(x: { url: string; status: number; body: string }): void {
  for (const re of internals) expect(x.body, `${x.status} ${x.url} leaks ${re}: ${x.body}`).not.toMatch(re);
}

describe('OWASP API Security Top 10 (2023) against createApiServer', () => {
  let h: ApiServerHarness;
  let t: Tenants;
  /** Project A's objects. */
  const a = { serverId: '', imageId: '', groupId: '', actionRequestId: '', fingerprint: '' };
  const allTokens = new Set<string>();

  const as = (token: string, o: InjectOptions) => h.call(token, o);
  const serversOf = async (token: string): Promise<string[]> => {
    const r = await as(token, { method: 'GET', url: '/v2.1/servers?limit=1000' });
    expect(r.statusCode).toBe(200);
    return (r.json().servers as { id: string }[]).map((s) => s.id);
  };

  const passwords = ['alice-Pw-0wasp', 'bob-Pw-0wasp', 'rita-Pw-0wasp', harnessAdminPassword];

  /**
   * Checks every exchange of the walk so far: no 500, request ids on each (unique, both headers),
   * no server fingerprint headers, errors as JSON without internals, no token or password in any
   * body, and a token in a header only as X-Subject-Token of `/v3/auth/tokens`.
   * @returns how many error answers were checked
   */
  const sweep = (): number => {
    let errors = 0;
    for (const x of h.exchanges) {
      const what = `${x.method} ${x.url}: ${x.status} ${x.body.slice(0, 300)}`;
      expect(x.status, what).not.toBe(500);
      expect(x.headers['x-openstack-request-id'], what).toMatch(/^req-[0-9a-f-]{36}$/);
      expect(x.headers['x-compute-request-id'], what).toBe(x.headers['x-openstack-request-id']);
      expect(x.headers['x-powered-by'], what).toBeUndefined();
      expect(x.headers.server, what).toBeUndefined();
      if (x.status >= 400 && x.method !== 'HEAD') {
        errors++;
        expectNoInternals(x);
        expect(() => JSON.parse(x.body), what).not.toThrow();
      }
      if (x.headers['x-subject-token'] !== undefined) expect(x.url, what).toMatch(/^\/v3\/auth\/tokens/);
      for (const secret of [...allTokens, ...passwords]) {
        expect(x.body.includes(secret), `${what}: the body carries a secret`).toBe(false);
        for (const [name, value] of Object.entries(x.headers))
          if (name !== 'x-subject-token')
            expect(String(value).includes(secret), `${what}: header ${name} carries a secret`).toBe(false);
      }
    }
    expect(new Set(h.exchanges.map((x) => x.headers['x-openstack-request-id'])).size).toBe(
      h.exchanges.length,
    );
    return errors;
  };

  beforeAll(async () => {
    h = await apiServerHarness();
    t = await seedTenants(h);
    for (const x of [t.admin, t.a.member, t.a.reader, t.b.member]) allTokens.add(x);
    const alice = t.a.member;
    const created = await as(alice, {
      method: 'POST',
      url: '/v2.1/servers',
      payload: {
        server: {
          name: secrets.serverName,
          imageRef: 'cirros',
          flavorRef: 'm1.small',
          metadata: { secret: secrets.metaValue },
        },
      },
    });
    expect(created.statusCode, created.body).toBe(202);
    a.serverId = created.json().server.id;
    await waitForServerStatus(h, t.admin, a.serverId, 'ACTIVE');
    const actions = await as(alice, {
      method: 'GET',
      url: `/v2.1/servers/${a.serverId}/os-instance-actions`,
    });
    a.actionRequestId = actions.json().instanceActions[0].request_id;

    const key = await as(alice, {
      method: 'POST',
      url: '/v2.1/os-keypairs',
      payload: { keypair: { name: secrets.keyName } },
    });
    expect(key.statusCode, key.body).toBeLessThan(300);
    a.fingerprint = key.json().keypair.fingerprint;

    const group = await as(alice, {
      method: 'POST',
      url: '/v2.1/os-server-groups',
      payload: { server_group: { name: secrets.groupName, policies: ['anti-affinity'] } },
    });
    expect(group.statusCode, group.body).toBe(200);
    a.groupId = group.json().server_group.id;

    const image = await as(alice, {
      method: 'POST',
      url: '/image/v2/images',
      payload: {
        name: secrets.imageName,
        visibility: 'private',
        disk_format: 'raw',
        container_format: 'bare',
      },
    });
    expect(image.statusCode, image.body).toBe(201);
    a.imageId = image.json().id;
    const upload = await as(alice, {
      method: 'PUT',
      url: `/image/v2/images/${a.imageId}/file`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.from(secrets.imageBytes),
    });
    expect(upload.statusCode, upload.body).toBe(204);
  });

  afterAll(async () => {
    await h?.close();
  });

  it('API1 broken object level authorization: project B reaches none of project A’s objects', async () => {
    const bob = t.b.member;
    const s = `/v2.1/servers/${a.serverId}`;
    const i = `/image/v2/images/${a.imageId}`;
    const attempts: { o: InjectOptions; allowed: number[] }[] = [
      { o: { method: 'GET', url: s }, allowed: [404] },
      { o: { method: 'PUT', url: s, payload: { server: { name: 'pwned' } } }, allowed: [404] },
      { o: { method: 'DELETE', url: s }, allowed: [404] },
      ...[
        { 'os-stop': null },
        { pause: null },
        { suspend: null },
        { reboot: { type: 'HARD' } },
        { rebuild: { imageRef: 'cirros' } },
        { createImage: { name: 'stolen' } },
        { 'os-getConsoleOutput': {} },
      ].map((payload) => ({ o: { method: 'POST' as const, url: `${s}/action`, payload }, allowed: [404] })),
      { o: { method: 'GET', url: `${s}/metadata` }, allowed: [404] },
      { o: { method: 'GET', url: `${s}/metadata/secret` }, allowed: [404] },
      {
        o: { method: 'PUT', url: `${s}/metadata/secret`, payload: { meta: { secret: 'pwned' } } },
        allowed: [404],
      },
      { o: { method: 'POST', url: `${s}/metadata`, payload: { metadata: { x: 'pwned' } } }, allowed: [404] },
      { o: { method: 'PUT', url: `${s}/metadata`, payload: { metadata: {} } }, allowed: [404] },
      { o: { method: 'DELETE', url: `${s}/metadata/secret` }, allowed: [404] },
      { o: { method: 'GET', url: `${s}/os-instance-actions` }, allowed: [404] },
      { o: { method: 'GET', url: `${s}/os-instance-actions/${a.actionRequestId}` }, allowed: [404] },
      { o: { method: 'GET', url: `/v2.1/os-server-groups/${a.groupId}` }, allowed: [404] },
      { o: { method: 'DELETE', url: `/v2.1/os-server-groups/${a.groupId}` }, allowed: [404] },
      { o: { method: 'GET', url: `/v2.1/os-keypairs/${secrets.keyName}` }, allowed: [404] },
      { o: { method: 'DELETE', url: `/v2.1/os-keypairs/${secrets.keyName}` }, allowed: [404] },
      { o: { method: 'GET', url: `/v2.1/os-quota-sets/${t.a.projectId}` }, allowed: [403] },
      { o: { method: 'GET', url: `/v2.1/os-quota-sets/${t.a.projectId}/detail` }, allowed: [403] },
      {
        o: {
          method: 'PUT',
          url: `/v2.1/os-quota-sets/${t.a.projectId}`,
          payload: { quota_set: { instances: 1 } },
        },
        allowed: [403],
      },
      { o: { method: 'DELETE', url: `/v2.1/os-quota-sets/${t.a.projectId}` }, allowed: [403] },
      { o: { method: 'GET', url: i }, allowed: [404] },
      { o: { method: 'GET', url: `${i}/file` }, allowed: [404] },
      {
        o: {
          method: 'PATCH',
          url: i,
          headers: jsonPatch,
          payload: JSON.stringify([{ op: 'replace', path: '/name', value: 'pwned' }]),
        },
        allowed: [404],
      },
      {
        o: {
          method: 'PUT',
          url: `${i}/file`,
          headers: { 'content-type': 'application/octet-stream' },
          payload: Buffer.from('overwrite'),
        },
        allowed: [404],
      },
      { o: { method: 'PUT', url: `${i}/tags/pwned` }, allowed: [404] },
      { o: { method: 'DELETE', url: i }, allowed: [404] },
    ];
    for (const { o, allowed } of attempts) {
      const r = await as(bob, o);
      const what = `${o.method} ${o.url} -> ${r.statusCode} ${r.body}`;
      expect(allowed, what).toContain(r.statusCode);
      faultShape(serviceOf(String(o.url)), r.statusCode, r.json());
      // a 404 may echo what the caller sent (Nova's "Keypair <name> not found"), nothing more
      for (const v of Object.values(secrets))
        if (!String(o.url).includes(v)) expect(r.body, what).not.toContain(v);
      expect(r.body, what).not.toContain(a.fingerprint);
    }

    // lists and usage show B only its own
    expect(await serversOf(bob)).not.toContain(a.serverId);
    const detail = await as(bob, { method: 'GET', url: '/v2.1/servers/detail' });
    expect(detail.body).not.toContain(secrets.serverName);
    const images = await as(bob, { method: 'GET', url: '/image/v2/images?limit=1000' });
    expect((images.json().images as { id: string }[]).map((x) => x.id)).not.toContain(a.imageId);
    expect(images.body).not.toContain(secrets.imageName);
    const groups = await as(bob, { method: 'GET', url: '/v2.1/os-server-groups' });
    expect(groups.body).not.toContain(a.groupId);
    const keys = await as(bob, { method: 'GET', url: '/v2.1/os-keypairs' });
    expect(keys.body).not.toContain(secrets.keyName);
    // another project's limits: Nova's os_compute_api:limits:other_project is admin-only
    const others = await as(bob, { method: 'GET', url: `/v2.1/limits?tenant_id=${t.a.projectId}` });
    expect(others.statusCode).toBe(403);
    expect(others.body).not.toContain('totalInstancesUsed');
    const limits = await as(bob, { method: 'GET', url: '/v2.1/limits' });
    expect(limits.json().limits.absolute.totalInstancesUsed).toBe(0);

    // A's objects are as they were (and A still reaches them: the checks above could fail)
    const alice = t.a.member;
    const server = await as(alice, { method: 'GET', url: `/v2.1/servers/${a.serverId}` });
    expect(server.statusCode).toBe(200);
    expect(server.json().server).toMatchObject({
      name: secrets.serverName,
      status: 'ACTIVE',
      metadata: { secret: secrets.metaValue },
    });
    const image = await as(alice, { method: 'GET', url: `/image/v2/images/${a.imageId}` });
    expect(image.json()).toMatchObject({ name: secrets.imageName, status: 'active', visibility: 'private' });
    expect(image.json().tags).toEqual([]);
    const bytes = await as(alice, { method: 'GET', url: `/image/v2/images/${a.imageId}/file` });
    expect(bytes.body).toBe(secrets.imageBytes);
    expect((await as(alice, { method: 'GET', url: `/v2.1/os-server-groups/${a.groupId}` })).statusCode).toBe(
      200,
    );
    const key = await as(alice, { method: 'GET', url: `/v2.1/os-keypairs/${secrets.keyName}` });
    expect(key.json().keypair.fingerprint).toBe(a.fingerprint);
    const quota = await as(alice, { method: 'GET', url: `/v2.1/os-quota-sets/${t.a.projectId}` });
    expect(quota.statusCode).toBe(200);
    expect(quota.json().quota_set.instances).toBeGreaterThan(1);
  });

  it('API2 broken authentication: bad, tampered, expired and revoked tokens get Keystone’s 401; login failures look alike', async () => {
    const probe = { method: 'GET' as const, url: '/v2.1/servers' };
    const signature = t.a.member.slice(t.a.member.indexOf('.') + 1);
    const mid = Math.floor(signature.length / 2);
    const flipped = `${t.a.member.slice(0, t.a.member.indexOf('.') + 1)}${signature.slice(0, mid)}${
      signature[mid] === 'A' ? 'B' : 'A'
    }${signature.slice(mid + 1)}`;
    // the same signature over a payload re-scoped to project B
    const [payload] = t.a.member.split('.');
    const wire = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
    const rescoped = `${Buffer.from(JSON.stringify({ ...wire, s: `p:${t.b.projectId}`, e: wire.e + 86_400_000 })).toString('base64url')}.${signature}`;
    const revokedToken = await h.login('alice', 'alice-Pw-0wasp', t.a.projectId);
    allTokens.add(revokedToken);
    expect((await as(revokedToken, probe)).statusCode).toBe(200);
    const revoke = await h.call(revokedToken, {
      method: 'DELETE',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': revokedToken },
    });
    expect(revoke.statusCode).toBe(204);

    const bad: [string, string | null][] = [
      ['none', null],
      ['empty', ''],
      ['garbage', 'not-a-token'],
      ['flipped signature byte', flipped],
      ['payload re-scoped under the old signature', rescoped],
      ['overlong', 'x'.repeat(10_000)],
      ['revoked', revokedToken],
    ];
    for (const [what, token] of bad)
      for (const o of [
        probe,
        { method: 'GET' as const, url: '/image/v2/images' },
        { method: 'GET' as const, url: '/v3/projects' },
        { method: 'GET' as const, url: '/metrics' },
      ]) {
        const r = await h.call(null, { ...o, headers: token === null ? {} : { 'x-auth-token': token } });
        expect(r.statusCode, `${what} ${o.url}`).toBe(401);
        expect(r.json(), what).toEqual({
          error: {
            code: 401,
            title: 'Unauthorized',
            message: 'The request you have made requires authentication.',
          },
        });
        expect(r.headers['www-authenticate'], what).toBe(identityUri);
        expect(r.headers['x-subject-token']).toBeUndefined();
      }
    // the intact token still works (the 401s above are about the token, not the route)
    expect((await as(t.a.member, probe)).statusCode).toBe(200);

    // a wrong password, an unknown user, a wrong domain: one answer
    const failures = await Promise.all(
      [
        passwordAuthBody('alice', 'wrong-password', t.a.projectId),
        passwordAuthBody('admin', 'wrong-password'),
        passwordAuthBody('no-such-user', 'alice-Pw-0wasp', t.a.projectId),
        // right password, but a project the user has no role on
        passwordAuthBody('alice', 'alice-Pw-0wasp', t.b.projectId),
      ].map((payload) =>
        h.call(null, { method: 'POST', url: '/v3/auth/tokens', payload: payload as Record<string, unknown> }),
      ),
    );
    for (const r of failures) {
      expect(r.statusCode).toBe(401);
      expect(r.body).toBe(failures[0]!.body);
      expect(r.headers['x-subject-token']).toBeUndefined();
      expect(r.headers['www-authenticate']).toBe(identityUri);
    }

    // no token ever appears in a body, nor in a header other than X-Subject-Token of /v3/auth/tokens
    for (const x of h.exchanges)
      if (x.url.startsWith('/v3/auth/tokens') && x.headers['x-subject-token'])
        allTokens.add(String(x.headers['x-subject-token']));
    expect(allTokens.size).toBeGreaterThanOrEqual(5);
    sweep();
  });

  it('API2 broken authentication: a token stops working when it expires', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    let e: ApiServerHarness | undefined;
    try {
      e = await apiServerHarness({ cloud: { hosts: 1 }, server: { tokenTtlSeconds: 300 } });
      const token = await e.adminToken();
      const probes: InjectOptions[] = [
        { method: 'GET', url: '/v2.1/servers' },
        { method: 'GET', url: '/image/v2/images' },
        { method: 'GET', url: '/v3/projects' },
      ];
      for (const o of probes) expect((await e.call(token, o)).statusCode, String(o.url)).toBe(200);
      vi.setSystemTime(Date.now() + 299_000);
      expect((await e.call(token, probes[0]!)).statusCode).toBe(200);
      vi.setSystemTime(Date.now() + 2_000);
      for (const o of probes) {
        const r = await e.call(token, o);
        expect(r.statusCode, String(o.url)).toBe(401);
        expect(r.json().error.code).toBe(401);
        expect(r.headers['www-authenticate']).toBe(identityUri);
      }
      // and it cannot be traded for a fresh one
      const rescope = await e.call(null, {
        method: 'POST',
        url: '/v3/auth/tokens',
        payload: { auth: { identity: { methods: ['token'], token: { id: token } } } },
      });
      expect(rescope.statusCode).toBe(401);
    } finally {
      vi.useRealTimers();
      await e?.close();
    }
  });

  it('API3 broken object property level authorization: no mass assignment, no hidden fields, no self-promotion', async () => {
    const alice = t.a.member;
    const before = await serversOf(alice);
    for (const [field, value] of [
      ['host', 'host-0'],
      ['node', 'host-0'],
      ['project_id', t.b.projectId],
      ['tenant_id', t.b.projectId],
      ['user_id', t.b.memberId],
      ['OS-EXT-SRV-ATTR:host', 'host-0'],
      ['status', 'ACTIVE'],
    ] as const) {
      const r = await as(alice, {
        method: 'POST',
        url: '/v2.1/servers',
        headers: computeVersion('2.73'),
        payload: { server: { name: 'mass', imageRef: 'cirros', flavorRef: 'm1.small', [field]: value } },
      });
      expect(r.statusCode, `${field}: ${r.body}`).toBe(400);
      expect(r.json().badRequest.message).toContain(field);
    }
    expect(await serversOf(alice)).toEqual(before);

    // members see neither the extended server attributes nor host_status; admins do
    for (const url of [`/v2.1/servers/${a.serverId}`, '/v2.1/servers/detail']) {
      const member = await as(alice, { method: 'GET', url, headers: computeVersion('2.73') });
      expect(member.statusCode).toBe(200);
      const view = url.endsWith('detail') ? member.json().servers[0] : member.json().server;
      expect(view.id).toBe(a.serverId);
      const hidden = Object.keys(view).filter((k) => k.startsWith('OS-EXT-SRV-ATTR:') || k === 'host_status');
      expect(hidden).toEqual([]);
      expect(member.body).not.toMatch(/"host-\d"/);
    }
    const adminView = await as(t.admin, {
      method: 'GET',
      url: `/v2.1/servers/${a.serverId}`,
      headers: computeVersion('2.73'),
    });
    expect(adminView.json().server).toHaveProperty('OS-EXT-SRV-ATTR:host');
    expect(adminView.json().server).toHaveProperty('host_status');

    // image create: server-set attributes and another owner are refused, nothing created
    const myImages = async () =>
      (await as(alice, { method: 'GET', url: '/image/v2/images?limit=1000' })).json().images.length as number;
    const imagesBefore = await myImages();
    for (const [field, value, message] of [
      ['owner', t.b.projectId, /not permitted to create images owned by/],
      ['status', 'active', /'status' is read-only/],
      ['checksum', 'd41d8cd98f00b204e9800998ecf8427e', /'checksum' is read-only/],
      ['os_hash_value', 'a'.repeat(128), /'os_hash_value' is read-only/],
      ['size', 1, /'size' is read-only/],
      ['created_at', '2000-01-01T00:00:00Z', /'created_at' is read-only/],
      ['deleted', true, /'deleted' is reserved/],
    ] as const) {
      const r = await as(alice, {
        method: 'POST',
        url: '/image/v2/images',
        payload: { name: 'mass', [field]: value },
      });
      expect(r.statusCode, `${field}: ${r.body}`).toBe(403);
      expect(r.json().message).toMatch(message);
    }
    expect(await myImages()).toBe(imagesBefore);

    // image patch of read-only attributes
    const shown = (await as(alice, { method: 'GET', url: `/image/v2/images/${a.imageId}` })).json();
    for (const [path, value] of [
      ['/status', 'queued'],
      ['/checksum', '0'.repeat(32)],
      ['/size', 1],
      ['/owner', t.b.projectId],
      ['/created_at', '2000-01-01T00:00:00Z'],
      ['/id', '00000000-0000-4000-8000-000000000000'],
    ] as const) {
      const r = await as(alice, {
        method: 'PATCH',
        url: `/image/v2/images/${a.imageId}`,
        headers: jsonPatch,
        payload: JSON.stringify([{ op: 'replace', path, value }]),
      });
      expect(r.statusCode, `${path}: ${r.body}`).toBe(403);
    }
    const after = (await as(alice, { method: 'GET', url: `/image/v2/images/${a.imageId}` })).json();
    expect(after).toEqual(shown);

    // identity: a member creates and changes no user or project, and grants itself nothing
    const forbidden: InjectOptions[] = [
      { method: 'POST', url: '/v3/users', payload: { user: { name: 'mallory', password: 'x-Pw-12345' } } },
      { method: 'PATCH', url: `/v3/users/${t.a.memberId}`, payload: { user: { name: 'alice2' } } },
      { method: 'PATCH', url: `/v3/users/${t.b.memberId}`, payload: { user: { password: 'taken-Over-1' } } },
      { method: 'PATCH', url: `/v3/users/${t.b.memberId}`, payload: { user: { enabled: false } } },
      { method: 'POST', url: '/v3/projects', payload: { project: { name: 'mallory-project' } } },
      { method: 'PATCH', url: `/v3/projects/${t.a.projectId}`, payload: { project: { name: 'renamed' } } },
      { method: 'PUT', url: `/v3/projects/${t.a.projectId}/users/${t.a.memberId}/roles/${t.roleIds.admin}` },
      { method: 'PUT', url: `/v3/projects/${t.b.projectId}/users/${t.a.memberId}/roles/${t.roleIds.member}` },
      { method: 'PUT', url: `/v3/system/users/${t.a.memberId}/roles/${t.roleIds.admin}` },
      { method: 'PUT', url: `/v3/domains/default/users/${t.a.memberId}/roles/${t.roleIds.admin}` },
      { method: 'POST', url: '/v3/roles', payload: { role: { name: 'superuser' } } },
    ];
    for (const o of forbidden) {
      const r = await as(alice, o);
      expect(r.statusCode, `${o.method} ${o.url}: ${r.body}`).toBe(403);
      faultShape('identity', 403, r.json());
    }
    const assignments = await as(t.admin, {
      method: 'GET',
      url: `/v3/role_assignments?user.id=${t.a.memberId}`,
    });
    expect(assignments.statusCode).toBe(200);
    expect(
      (assignments.json().role_assignments as { role: { id: string }; scope: unknown }[]).map(
        (x) => x.role.id,
      ),
    ).toEqual([t.roleIds.member]);
    const fresh = await h.login('alice', 'alice-Pw-0wasp', t.a.projectId);
    allTokens.add(fresh);
    const info = await h.call(fresh, {
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': fresh },
    });
    expect((info.json().token.roles as { name: string }[]).map((r) => r.name)).not.toContain('admin');
    expect((await h.call(fresh, { method: 'GET', url: '/v3/users' })).statusCode).toBe(403);
    const bobStill = await as(t.admin, { method: 'GET', url: `/v3/users/${t.b.memberId}` });
    expect(bobStill.json().user).toMatchObject({ name: 'bob', enabled: true });
    // bob's password still works
    allTokens.add(await h.login('bob', 'bob-Pw-0wasp', t.b.projectId));
  });

  it('API4 unrestricted resource consumption: body size, nesting, page size and request rate are bounded', async () => {
    const bob = t.b.member;
    const before = await serversOf(bob);
    const big = 'x'.repeat(2 * 1024 * 1024);
    const oversized: InjectOptions[] = [
      {
        method: 'POST',
        url: '/v2.1/servers',
        payload: { server: { name: 'big', imageRef: 'cirros', flavorRef: 'm1.small', metadata: { k: big } } },
      },
      { method: 'POST', url: '/image/v2/images', payload: { name: 'big', prop: big } },
      {
        method: 'POST',
        url: '/v3/auth/tokens',
        payload: passwordAuthBody('bob', big) as Record<string, unknown>,
      },
      { method: 'POST', url: '/v3/projects', payload: { project: { name: big } } },
    ];
    for (const o of oversized) {
      const r = await as(o.url === '/v3/projects' ? t.admin : bob, o);
      expect(r.statusCode, `${o.url}: ${r.body.slice(0, 200)}`).toBe(413);
      faultShape(serviceOf(String(o.url)), 413, r.json());
    }
    // under the body limit but over the field limits: a 400 naming the field
    const long = await as(bob, {
      method: 'POST',
      url: '/v2.1/servers',
      payload: {
        server: {
          name: 'long',
          imageRef: 'cirros',
          flavorRef: 'm1.small',
          metadata: { k: 'v'.repeat(256 * 1024) },
        },
      },
    });
    expect(long.statusCode).toBe(400);
    expect(long.json().badRequest.message).toContain('body.server.metadata.k');

    // deeply nested JSON: refused, never a 500 (no recursion blows up)
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    const nest = deep(200_000);
    const nested: [string, string, InjectOptions['headers']?][] = [
      [
        '/v2.1/servers',
        `{"server":{"name":"deep","imageRef":"cirros","flavorRef":"m1.small","metadata":{"k":${nest}}}}`,
      ],
      ['/v2.1/servers', nest],
      ['/image/v2/images', `{"name":"deep","prop":${nest}}`],
      ['/v3/auth/tokens', `{"auth":{"identity":{"methods":["password"],"password":{"user":${nest}}}}}`],
      ['/v3/users', `{"user":{"name":${nest}}}`],
    ];
    for (const [url, payload] of nested) {
      const r = await as(url === '/v3/users' ? t.admin : bob, {
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json' },
        payload,
      });
      expect(r.statusCode, `${url}: ${r.body.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
      expect(r.statusCode, `${url}: ${r.body.slice(0, 300)}`).toBeLessThan(500);
      faultShape(serviceOf(url), r.statusCode, r.json());
    }
    const patch = await as(t.a.member, {
      method: 'PATCH',
      url: `/image/v2/images/${a.imageId}`,
      headers: jsonPatch,
      payload: `[{"op":"add","path":"/deep","value":${nest}}]`,
    });
    expect(patch.statusCode).toBe(400);
    expect(await serversOf(bob)).toEqual(before);
    // Nova takes hints it does not know (additionalProperties: true); an unknown deep one is
    // dropped, not kept nor walked
    const hinted = await as(bob, {
      method: 'POST',
      url: '/v2.1/servers',
      headers: { 'content-type': 'application/json' },
      payload: `{"server":{"name":"deep-hint","imageRef":"cirros","flavorRef":"m1.small"},"os:scheduler_hints":{"x":${nest}}}`,
    });
    expect(hinted.statusCode).toBe(202);
    const shown = await as(bob, { method: 'GET', url: `/v2.1/servers/${hinted.json().server.id}` });
    expect(shown.statusCode).toBe(200);
    expect(shown.body).not.toContain('[[');
    expect(await serversOf(bob)).toHaveLength(before.length + 1);

    // a huge limit is accepted and capped at 1000
    for (const url of [
      '/v2.1/servers?limit=100000',
      '/v2.1/flavors?limit=100000',
      '/image/v2/images?limit=100000',
    ])
      expect((await as(bob, { method: 'GET', url })).statusCode, url).toBe(200);
  });

  it('API4 unrestricted resource consumption: a page is at most 1000 items, whatever the limit', async () => {
    const e = await apiServerHarness({ cloud: { hosts: 1 } });
    try {
      const admin = await e.adminToken();
      for (let n = 0; n < 1001; n += 50)
        await Promise.all(
          Array.from({ length: Math.min(50, 1001 - n) }, (_, k) =>
            e.server.app.inject({
              method: 'POST',
              url: '/image/v2/images',
              headers: { 'x-auth-token': admin },
              payload: { name: `bulk-${n + k}` },
            }),
          ),
        );
      const page = await e.call(admin, { method: 'GET', url: '/image/v2/images?limit=100000' });
      expect(page.statusCode).toBe(200);
      expect(page.json().images).toHaveLength(1000);
      expect(page.json().next).toContain('marker=');
      const rest = await e.call(admin, { method: 'GET', url: `/image${page.json().next}` });
      expect(rest.statusCode, rest.body).toBe(200);
      // 1001 records plus the engine's cirros
      expect(rest.json().images).toHaveLength(2);
    } finally {
      await e.close();
    }
  });

  it('API4 unrestricted resource consumption: past the rate limit a 429 with Retry-After, per caller', async () => {
    const e = await apiServerHarness({
      cloud: { hosts: 1 },
      server: { rateLimit: { perSecond: 0.001, burst: 3 } },
    });
    try {
      const admin = await e.adminToken(); // the address's first request
      for (let n = 0; n < 3; n++)
        expect((await e.call(admin, { method: 'GET', url: '/v2.1/servers' })).statusCode).toBe(200);
      const limited = await e.call(admin, { method: 'GET', url: '/v2.1/servers' });
      expect(limited.statusCode).toBe(429);
      expect(limited.json()).toEqual({ overLimit: { code: 429, message: expect.any(String) } });
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      const image = await e.call(admin, { method: 'GET', url: '/image/v2/images' });
      expect(image.statusCode).toBe(429);
      faultShape('image', 429, image.json());
      // another caller (the anonymous address) has its own bucket: two left
      for (let n = 0; n < 2; n++)
        expect((await e.call(null, { method: 'GET', url: '/v3' })).statusCode).toBe(200);
      const anon = await e.call(null, {
        method: 'POST',
        url: '/v3/auth/tokens',
        payload: passwordAuthBody('admin', harnessAdminPassword) as Record<string, unknown>,
      });
      expect(anon.statusCode).toBe(429);
      expect(anon.headers['retry-after']).toMatch(/^\d+$/);
      expect(anon.headers['x-subject-token']).toBeUndefined();
    } finally {
      await e.close();
    }
  });

  it('API5 broken function level authorization: members and readers reach no admin function', async () => {
    const services = await as(t.admin, {
      method: 'GET',
      url: '/v2.1/os-services',
      headers: computeVersion('2.53'),
    });
    expect(services.statusCode).toBe(200);
    const serviceId = services
      .json()
      .services.find((s: { binary: string }) => s.binary === 'nova-compute').id;
    const adminOnly: InjectOptions[] = [
      { method: 'GET', url: '/v2.1/os-hypervisors' },
      { method: 'GET', url: '/v2.1/os-hypervisors/detail' },
      { method: 'GET', url: '/v2.1/os-hypervisors/statistics' },
      { method: 'GET', url: '/v2.1/os-aggregates' },
      {
        method: 'POST',
        url: '/v2.1/os-aggregates',
        payload: { aggregate: { name: 'evil', availability_zone: 'evil' } },
      },
      { method: 'GET', url: '/v2.1/os-services' },
      {
        method: 'PUT',
        url: `/v2.1/os-services/${serviceId}`,
        headers: computeVersion('2.53'),
        payload: { status: 'disabled' },
      },
      {
        method: 'PUT',
        url: '/v2.1/os-services/disable',
        payload: { host: 'host-0', binary: 'nova-compute' },
      },
      {
        method: 'PUT',
        url: `/v2.1/os-quota-sets/${t.a.projectId}`,
        payload: { quota_set: { instances: 9999 } },
      },
      { method: 'DELETE', url: `/v2.1/os-quota-sets/${t.a.projectId}` },
      {
        method: 'POST',
        url: '/v2.1/flavors',
        payload: { flavor: { name: 'evil', ram: 1, vcpus: 1, disk: 1 } },
      },
      { method: 'DELETE', url: '/v2.1/flavors/m1.small' },
      { method: 'POST', url: '/v2.1/flavors/m1.small/os-extra_specs', payload: { extra_specs: { a: 'b' } } },
      { method: 'GET', url: '/v2.1/servers?all_tenants=1' },
      { method: 'GET', url: '/v2.1/servers/detail?all_tenants=true' },
      { method: 'GET', url: '/metrics' },
      { method: 'GET', url: '/v3/users' },
      { method: 'GET', url: '/v3/role_assignments' },
      { method: 'DELETE', url: `/v3/projects/${t.a.projectId}` },
      { method: 'DELETE', url: `/v3/users/${t.b.memberId}` },
    ];
    for (const caller of [t.a.member, t.a.reader])
      for (const o of adminOnly) {
        const r = await as(caller, o);
        const what = `${caller === t.a.member ? 'member' : 'reader'} ${o.method} ${o.url}: ${r.statusCode} ${r.body}`;
        expect(r.statusCode, what).toBe(403);
        faultShape(serviceOf(String(o.url)), 403, r.json());
      }
    // the same functions answer the administrator (the 403s are the policy, not a broken route)
    for (const url of [
      '/v2.1/os-hypervisors',
      '/v2.1/os-aggregates',
      '/metrics',
      '/v3/users',
      '/v2.1/servers?all_tenants=1',
    ])
      expect((await as(t.admin, { method: 'GET', url })).statusCode, url).toBe(200);
    const hosts = await as(t.admin, { method: 'GET', url: '/v2.1/os-services' });
    expect(hosts.json().services.every((s: { status: string }) => s.status === 'enabled')).toBe(true);

    // a reader reads, but creates, changes and deletes nothing
    const rita = t.a.reader;
    expect((await as(rita, { method: 'GET', url: `/v2.1/servers/${a.serverId}` })).statusCode).toBe(200);
    const before = await serversOf(rita);
    const writes: InjectOptions[] = [
      {
        method: 'POST',
        url: '/v2.1/servers',
        payload: { server: { name: 'r', imageRef: 'cirros', flavorRef: 'm1.small' } },
      },
      { method: 'DELETE', url: `/v2.1/servers/${a.serverId}` },
      { method: 'PUT', url: `/v2.1/servers/${a.serverId}`, payload: { server: { name: 'renamed' } } },
      { method: 'POST', url: `/v2.1/servers/${a.serverId}/action`, payload: { 'os-stop': null } },
      { method: 'POST', url: `/v2.1/servers/${a.serverId}/action`, payload: { reboot: { type: 'SOFT' } } },
      {
        method: 'PUT',
        url: `/v2.1/servers/${a.serverId}/metadata/secret`,
        payload: { meta: { secret: 'r' } },
      },
      { method: 'DELETE', url: `/v2.1/servers/${a.serverId}/metadata/secret` },
      {
        method: 'POST',
        url: '/v2.1/os-server-groups',
        payload: { server_group: { name: 'r', policies: ['affinity'] } },
      },
      { method: 'DELETE', url: `/v2.1/os-server-groups/${a.groupId}` },
      { method: 'POST', url: '/image/v2/images', payload: { name: 'reader-image' } },
      {
        method: 'PATCH',
        url: `/image/v2/images/${a.imageId}`,
        headers: jsonPatch,
        payload: JSON.stringify([{ op: 'replace', path: '/name', value: 'r' }]),
      },
      { method: 'DELETE', url: `/image/v2/images/${a.imageId}` },
    ];
    for (const o of writes) {
      const r = await as(rita, o);
      expect(r.statusCode, `reader ${o.method} ${o.url}: ${r.body}`).toBe(403);
    }
    expect(await serversOf(rita)).toEqual(before);
    const server = (await as(t.a.member, { method: 'GET', url: `/v2.1/servers/${a.serverId}` })).json()
      .server;
    expect(server).toMatchObject({
      name: secrets.serverName,
      status: 'ACTIVE',
      metadata: { secret: secrets.metaValue },
    });
  });

  it('API6 unrestricted access to sensitive business flows: over quota nothing is created', async () => {
    const alice = t.a.member;
    const set = await as(t.admin, {
      method: 'PUT',
      url: `/v2.1/os-quota-sets/${t.a.projectId}`,
      payload: { quota_set: { instances: 2 } },
    });
    expect(set.statusCode, set.body).toBe(200);
    const create = (extra: Record<string, unknown> = {}) =>
      as(alice, {
        method: 'POST',
        url: '/v2.1/servers',
        payload: { server: { name: 'q', imageRef: 'cirros', flavorRef: 'm1.small', ...extra } },
      });
    const before = await serversOf(alice);
    expect(before).toHaveLength(1);
    for (const extra of [{ min_count: 2 }, { min_count: 5, max_count: 5 }, { min_count: 1000 }]) {
      const r = await create(extra);
      expect(r.statusCode, `${JSON.stringify(extra)}: ${r.body}`).toBe(403);
      expect(Object.keys(r.json())).toEqual(['forbidden']);
      expect(r.json().forbidden.message).toMatch(/quota/i);
      expect(await serversOf(alice)).toEqual(before);
    }
    const within = await create();
    expect(within.statusCode, within.body).toBe(202);
    expect(await serversOf(alice)).toHaveLength(2);
    const over = await create();
    expect(over.statusCode).toBe(403);
    expect(await serversOf(alice)).toHaveLength(2);
    const usage = await as(alice, { method: 'GET', url: `/v2.1/os-quota-sets/${t.a.projectId}/detail` });
    expect(usage.json().quota_set.instances).toMatchObject({ limit: 2, in_use: 2 });
    // another project's quota is its own
    const bob = await as(t.b.member, {
      method: 'POST',
      url: '/v2.1/servers',
      payload: { server: { name: 'b', imageRef: 'cirros', flavorRef: 'm1.small', min_count: 3 } },
    });
    expect(bob.statusCode, bob.body).toBe(202);
  });

  it('API7 server side request forgery: no route takes a URL to fetch', async () => {
    const hits: string[] = [];
    const trap = createServer((req: IncomingMessage, res) => {
      hits.push(`${req.method} ${req.url}`);
      res.end('trap');
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(trap.address() as AddressInfo).port}/payload.img`;
    try {
      const alice = t.a.member;
      const queued = await as(alice, { method: 'POST', url: '/image/v2/images', payload: { name: 'ssrf' } });
      expect(queued.statusCode).toBe(201);
      const id = queued.json().id as string;
      const attempts: { o: InjectOptions; allowed: number[] }[] = [
        {
          o: {
            method: 'POST',
            url: `/image/v2/images/${id}/import`,
            payload: { method: { name: 'web-download', uri: url } },
          },
          allowed: [404],
        },
        { o: { method: 'GET', url: '/image/v2/info/import' }, allowed: [404] },
        { o: { method: 'GET', url: '/image/v2/info/stores' }, allowed: [404] },
        { o: { method: 'PUT', url: `/image/v2/images/${id}/stage`, payload: { uri: url } }, allowed: [404] },
        {
          o: {
            method: 'POST',
            url: `/image/v2/images/${id}/locations`,
            payload: { url, validation_data: {} },
          },
          allowed: [404],
        },
        {
          o: {
            method: 'POST',
            url: '/image/v2/images',
            payload: { name: 'x', locations: [{ url, metadata: {} }] },
          },
          allowed: [403],
        },
        {
          o: { method: 'POST', url: '/image/v2/images', payload: { name: 'x', location: url } },
          allowed: [403],
        },
        {
          o: { method: 'POST', url: '/image/v2/images', payload: { name: 'x', direct_url: url } },
          allowed: [403],
        },
        {
          o: {
            method: 'PATCH',
            url: `/image/v2/images/${id}`,
            headers: jsonPatch,
            payload: JSON.stringify([{ op: 'add', path: '/locations/-', value: { url, metadata: {} } }]),
          },
          allowed: [403],
        },
        {
          o: {
            method: 'PATCH',
            url: `/image/v2/images/${id}`,
            headers: jsonPatch,
            payload: JSON.stringify([{ op: 'replace', path: '/direct_url', value: url }]),
          },
          allowed: [403],
        },
        // an upload is the bytes of the body, never a reference to fetch
        { o: { method: 'PUT', url: `/image/v2/images/${id}/file`, payload: { url } }, allowed: [400, 415] },
        {
          o: {
            method: 'PUT',
            url: `/image/v2/images/${id}/file`,
            headers: { 'content-type': 'text/uri-list' },
            payload: url,
          },
          allowed: [400, 415],
        },
        // an image reference that is a URL is read for its id only
        {
          o: {
            method: 'POST',
            url: '/v2.1/servers',
            payload: { server: { name: 'ssrf', imageRef: `${url}/no-such-image`, flavorRef: 'm1.small' } },
          },
          allowed: [400],
        },
        {
          o: {
            method: 'POST',
            url: '/v2.1/servers',
            payload: { server: { name: 'ssrf', imageRef: 'cirros', flavorRef: `${url}/no-such-flavor` } },
          },
          allowed: [400],
        },
      ];
      for (const { o, allowed } of attempts) {
        const r = await as(alice, o);
        expect(
          allowed,
          `${o.method} ${o.url} ${JSON.stringify(o.payload)}: ${r.statusCode} ${r.body}`,
        ).toContain(r.statusCode);
      }
      const image = (await as(alice, { method: 'GET', url: `/image/v2/images/${id}` })).json();
      expect(image.status).toBe('queued');
      expect(image).not.toHaveProperty('locations');
      expect(image).not.toHaveProperty('direct_url');
      expect(JSON.stringify(image)).not.toContain(url);
      expect(hits).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => trap.close(() => resolve()));
    }
  });

  it('API8 security misconfiguration: errors in each service’s format without internals; no fingerprints', async () => {
    const admin = t.admin;
    const probes: { token: string | null; o: InjectOptions; status: number }[] = [
      {
        token: admin,
        o: { method: 'GET', url: '/v2.1/servers/00000000-0000-4000-8000-000000000000' },
        status: 404,
      },
      { token: admin, o: { method: 'GET', url: '/v2.1/no-such-route' }, status: 404 },
      { token: null, o: { method: 'GET', url: '/wp-admin/setup.php' }, status: 404 },
      { token: null, o: { method: 'GET', url: '/.env' }, status: 404 },
      { token: null, o: { method: 'GET', url: '/v2.1/../../../etc/passwd' }, status: 404 },
      { token: null, o: { method: 'GET', url: '/image/v2/nothing' }, status: 404 },
      { token: null, o: { method: 'GET', url: '/v3/nothing' }, status: 404 },
      {
        token: admin,
        o: {
          method: 'POST',
          url: '/v2.1/servers',
          headers: { 'content-type': 'application/json' },
          payload: '{"server":',
        },
        status: 400,
      },
      { token: admin, o: { method: 'POST', url: '/v2.1/servers', payload: { server: 'x' } }, status: 400 },
      { token: admin, o: { method: 'GET', url: '/v2.1/servers?limit=abc' }, status: 400 },
      { token: admin, o: { method: 'GET', url: "/v2.1/servers?marker=' OR 1=1 --" }, status: 400 },
      { token: admin, o: { method: 'GET', url: "/v2.1/flavors/'%20OR%201=1%20--" }, status: 404 },
      {
        token: admin,
        o: { method: 'GET', url: '/v2.1/servers', headers: computeVersion('9.99') },
        status: 406,
      },
      {
        token: admin,
        o: {
          method: 'POST',
          url: '/v2.1/servers',
          headers: { 'content-type': 'text/xml' },
          payload: '<server/>',
        },
        status: 415,
      },
      { token: admin, o: { method: 'GET', url: '/image/v2/images/not-an-image' }, status: 404 },
      { token: admin, o: { method: 'GET', url: '/image/v2/images?sort_key=password' }, status: 400 },
      { token: admin, o: { method: 'GET', url: "/image/v2/images?marker='%3B--%20" }, status: 400 },
      {
        token: admin,
        o: {
          method: 'PATCH',
          url: `/image/v2/images/${a.imageId}`,
          headers: { 'content-type': 'application/json' },
          payload: '[]',
        },
        status: 415,
      },
      {
        token: admin,
        o: {
          method: 'PATCH',
          url: `/image/v2/images/${a.imageId}`,
          headers: jsonPatch,
          payload: '[{"op":"frob"}]',
        },
        status: 400,
      },
      { token: admin, o: { method: 'GET', url: '/v3/projects/no-such-project' }, status: 404 },
      {
        token: admin,
        o: { method: 'GET', url: "/v3/users/'%3B%20DROP%20TABLE%20identity_user%3B--" },
        status: 404,
      },
      { token: null, o: { method: 'POST', url: '/v3/auth/tokens', payload: {} }, status: 400 },
      {
        token: null,
        o: {
          method: 'POST',
          url: '/v3/auth/tokens',
          headers: { 'content-type': 'application/json' },
          payload: '{',
        },
        status: 400,
      },
      { token: admin, o: { method: 'GET', url: '/v2.1/os-hypervisors/no-such/uptime' }, status: 404 },
    ];
    for (const { token, o, status } of probes) {
      const r = await h.call(token, o);
      const what = `${o.method} ${o.url}: ${r.statusCode} ${r.body}`;
      expect(r.statusCode, what).toBe(status);
      expect(r.headers['content-type'], what).toMatch(/^application\/json/);
      faultShape(serviceOf(String(o.url)), r.statusCode, r.json());
    }
    // and every answer of this walk so far
    expect(sweep()).toBeGreaterThanOrEqual(probes.length);

    const doc = await h.call(null, { method: 'GET', url: '/openapi.json' });
    expect(doc.statusCode).toBe(200);
    expect(doc.json()).toMatchObject({
      openapi: '3.1.0',
      components: { securitySchemes: { token: { name: 'X-Auth-Token' } } },
    });
    expect(Object.keys(doc.json().paths).length).toBeGreaterThan(80);
    expectNoInternals({ url: '/openapi.json', status: 200, body: doc.body });
  });

  it('API9 improper inventory management: every documented operation but the public few needs a token', async () => {
    const doc = (await h.call(null, { method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { security?: unknown[]; 'x-policy-rules'?: string[] }>>;
    };
    const publicOps = new Set([
      'GET /',
      'GET /v2.1',
      'GET /image',
      'GET /image/versions',
      'GET /v3',
      'POST /v3/auth/tokens',
      'POST /v3/users/{userId}/password',
    ]);
    // Nova and Glance check no policy on these reads (any token will do)
    const noPolicy = new Set([
      'GET /v2.1/flavors',
      'GET /v2.1/flavors/detail',
      'GET /v2.1/flavors/{flavorId}',
      'GET /image/v2/schemas/image',
      'GET /image/v2/schemas/images',
    ]);
    let protectedCount = 0;
    const undocumentedPolicy: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops)) {
        const name = `${method.toUpperCase()} ${path}`;
        const url = path.replace(/\{(\w+)\}/g, (_, p: string) => `dummy-${p}`);
        if (!op.security?.length) {
          expect(publicOps, `${name} is served without a token`).toContain(name);
          const r = await h.call(null, { method: method.toUpperCase() as 'GET', url });
          expect(r.statusCode, name).toBeLessThan(500);
          continue;
        }
        protectedCount++;
        if (!op['x-policy-rules']?.length && !noPolicy.has(name)) undocumentedPolicy.push(name);
        for (const token of [null, 'forged.token']) {
          const r = await h.call(token, { method: method.toUpperCase() as 'GET', url });
          expect(r.statusCode, `${name} without a valid token: ${r.body}`).toBe(401);
          expect(r.headers['www-authenticate'], name).toBe(identityUri);
          if (method !== 'head') expect(r.json().error.code).toBe(401);
        }
      }
    expect(protectedCount).toBeGreaterThan(120);
    // each protected operation names the policy rules it enforces
    expect(undocumentedPolicy).toEqual([]);
  });

  it('API10 unsafe consumption of APIs: hostile strings are refused naming the field, or kept verbatim', async () => {
    const hostile = [
      'nul\u0000byte',
      'bell\u0007',
      'line\nbreak',
      'esc\u001b[31mred',
      'del\u007f',
      '<script>alert(1)</script>',
      "'; DROP TABLE identity_project; --",
      "' OR '1'='1",
      '$(rm -rf /)',
      '`id`; cat /etc/passwd',
      '; Remove-Item -Recurse -Force C:\\',
      '"},"admin":true,"x":{"',
      '{"$gt": ""}',
      '../../etc/passwd',
      '%00%0d%0a',
      '\u202Egnp.exe',
      'ünïcødé 名前 🚀',
      'x'.repeat(10_000),
    ];
    const control = (s: string) => /[\p{Cc}]/u.test(s);
    const bob = t.b.member;
    const admin = t.admin;
    const count = async (token: string, url: string, key: string) =>
      ((await as(token, { method: 'GET', url })).json()[key] as unknown[]).length;

    type Target = {
      readonly what: string;
      readonly field: RegExp;
      readonly token: string;
      readonly list: [string, string];
      create(s: string): InjectOptions;
      /** The stored value, read back after a 2xx. */
      readBack(r: LightMyRequestResponse): Promise<string | undefined>;
    };
    const own = await as(bob, {
      method: 'POST',
      url: '/v2.1/servers',
      payload: { server: { name: 'b-meta', imageRef: 'cirros', flavorRef: 'm1.small' } },
    });
    expect(own.statusCode, own.body).toBe(202);
    const bobServer = own.json().server.id as string;
    const targets: Target[] = [
      {
        what: 'server name',
        field: /body\.server\.name/,
        token: bob,
        list: ['/v2.1/servers?limit=1000', 'servers'],
        create: (s) => ({
          method: 'POST',
          url: '/v2.1/servers',
          payload: { server: { name: s, imageRef: 'cirros', flavorRef: 'm1.small' } },
        }),
        readBack: async (r) =>
          (await as(bob, { method: 'GET', url: `/v2.1/servers/${r.json().server.id}` })).json().server.name,
      },
      {
        what: 'server metadata value',
        field: /body\.metadata\.k/,
        token: bob,
        list: ['/v2.1/servers?limit=1000', 'servers'],
        create: (s) => ({
          method: 'POST',
          url: `/v2.1/servers/${bobServer}/metadata`,
          payload: { metadata: { k: s } },
        }),
        readBack: async () =>
          (await as(bob, { method: 'GET', url: `/v2.1/servers/${bobServer}/metadata` })).json().metadata.k,
      },
      {
        what: 'server metadata key',
        field: /body\.metadata/,
        token: bob,
        list: ['/v2.1/servers?limit=1000', 'servers'],
        create: (s) => ({
          method: 'PUT',
          url: `/v2.1/servers/${bobServer}/metadata`,
          payload: { metadata: { [s]: 'v' } },
        }),
        readBack: async () =>
          Object.keys(
            (await as(bob, { method: 'GET', url: `/v2.1/servers/${bobServer}/metadata` })).json().metadata,
          )[0],
      },
      {
        what: 'image name',
        field: /body\.name/,
        token: bob,
        list: ['/image/v2/images?limit=1000', 'images'],
        create: (s) => ({ method: 'POST', url: '/image/v2/images', payload: { name: s } }),
        readBack: async (r) =>
          (await as(bob, { method: 'GET', url: `/image/v2/images/${r.json().id}` })).json().name,
      },
      {
        what: 'image property',
        field: /body\.hostile_prop/,
        token: bob,
        list: ['/image/v2/images?limit=1000', 'images'],
        create: (s) => ({ method: 'POST', url: '/image/v2/images', payload: { name: 'p', hostile_prop: s } }),
        readBack: async (r) =>
          (await as(bob, { method: 'GET', url: `/image/v2/images/${r.json().id}` })).json().hostile_prop,
      },
      {
        what: 'project name',
        field: /body\.project\.name/,
        token: admin,
        list: ['/v3/projects', 'projects'],
        create: (s) => ({ method: 'POST', url: '/v3/projects', payload: { project: { name: s } } }),
        readBack: async (r) =>
          (await as(admin, { method: 'GET', url: `/v3/projects/${r.json().project.id}` })).json().project
            .name,
      },
      {
        what: 'user name',
        field: /body\.user\.name/,
        token: admin,
        list: ['/v3/users', 'users'],
        create: (s) => ({ method: 'POST', url: '/v3/users', payload: { user: { name: s } } }),
        readBack: async (r) =>
          (await as(admin, { method: 'GET', url: `/v3/users/${r.json().user.id}` })).json().user.name,
      },
    ];
    const outcome: string[] = [];
    for (const target of targets) {
      let expected = await count(target.token, ...target.list);
      for (const s of hostile) {
        const r = await as(target.token, target.create(s));
        const what = `${target.what} ${JSON.stringify(s.slice(0, 40))}: ${r.statusCode} ${r.body.slice(0, 300)}`;
        if (r.statusCode === 400) {
          expect(r.body, what).toMatch(target.field);
          outcome.push(`${target.what}: refused ${JSON.stringify(s.slice(0, 20))}`);
        } else {
          expect(r.statusCode, what).toBeGreaterThanOrEqual(200);
          expect(r.statusCode, what).toBeLessThan(300);
          expect(control(s), `${what}: a control character was accepted`).toBe(false);
          expect(s.length, `${what}: a 10,000-character value was accepted`).toBeLessThan(10_000);
          expect(await target.readBack(r), what).toBe(s);
          if (target.create(s).method === 'POST' && !target.what.startsWith('server metadata')) expected++;
        }
        expect(await count(target.token, ...target.list), what).toBe(expected);
      }
    }
    // nothing was dropped or widened: the seeded objects are all there and still isolated
    const projects = (await as(admin, { method: 'GET', url: '/v3/projects' })).json().projects as {
      name: string;
    }[];
    expect(projects.map((p) => p.name)).toEqual(expect.arrayContaining(['admin', 'owasp-a', 'owasp-b']));
    const users = (await as(admin, { method: 'GET', url: '/v3/users' })).json().users as { name: string }[];
    expect(users.map((u) => u.name)).toEqual(expect.arrayContaining(['admin', 'alice', 'bob', 'rita']));
    expect(await serversOf(bob)).not.toContain(a.serverId);
    expect(
      (await as(t.a.member, { method: 'GET', url: `/v2.1/servers/${a.serverId}` })).json().server.name,
    ).toBe(secrets.serverName);
    expect(outcome.length).toBeGreaterThan(0);
  });

  it('the whole walk: no answer was a 500, leaked internals or carried a token or password', () => {
    expect(sweep()).toBeGreaterThan(0);
  });
});
