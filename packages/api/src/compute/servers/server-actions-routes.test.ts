import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { action, createServer, mv, serversHarness, waitForStatus } from './servers.test-helper.js';

describe('server actions', () => {
  let h: ApiHarness;
  let id: string;
  const snapshots: { imageId: string; ownerProjectId: string }[] = [];
  beforeAll(async () => {
    h = await serversHarness({
      servers: {
        recordSnapshot: async (s) => {
          snapshots.push(s);
        },
      },
    });
    id = await createServer(h, 'alice', { name: 'acts' });
    await waitForStatus(h, id, 'ACTIVE');
  });
  afterAll(() => h.close());

  it('stops and starts (202 at once), and refuses a stop of a stopped server with Nova’s 409', async () => {
    expect((await action(h, 'alice', id, { 'os-stop': null })).statusCode).toBe(202);
    const stopped = await waitForStatus(h, id, 'SHUTOFF');
    expect(stopped['OS-EXT-STS:power_state']).toBe(4);
    const again = await action(h, 'alice', id, { 'os-stop': null });
    expect(again.statusCode).toBe(409);
    expect(again.json().conflictingRequest.message).toBe(
      `Cannot 'stop' instance ${id} while it is in vm_state stopped`,
    );
    expect((await action(h, 'alice', id, { 'os-start': null })).statusCode).toBe(202);
    await waitForStatus(h, id, 'ACTIVE');
  });

  it('reboots SOFT and HARD and refuses any other type naming the field', async () => {
    expect((await action(h, 'alice', id, { reboot: { type: 'SOFT' } })).statusCode).toBe(202);
    await waitForStatus(h, id, 'ACTIVE');
    expect((await action(h, 'alice', id, { reboot: { type: 'HARD' } })).statusCode).toBe(202);
    await waitForStatus(h, id, 'ACTIVE');
    const bad = await action(h, 'alice', id, { reboot: { type: 'graceful' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().badRequest.message).toContain('type');
  });

  it('pauses, unpauses, suspends and resumes with the SDK’s empty Accept header and no microversion', async () => {
    const sdk = { accept: '' };
    expect((await action(h, 'alice', id, { pause: null }, sdk)).statusCode).toBe(202);
    await waitForStatus(h, id, 'PAUSED');
    expect((await action(h, 'alice', id, { unpause: null }, sdk)).statusCode).toBe(202);
    await waitForStatus(h, id, 'ACTIVE');
    expect((await action(h, 'alice', id, { suspend: null }, sdk)).statusCode).toBe(202);
    await waitForStatus(h, id, 'SUSPENDED');
    expect((await action(h, 'alice', id, { resume: null }, sdk)).statusCode).toBe(202);
    await waitForStatus(h, id, 'ACTIVE');
  });

  it('returns the console output as a string', async () => {
    const r = await action(h, 'alice', id, { 'os-getConsoleOutput': { length: 5 } }, { accept: '' });
    expect(r.statusCode).toBe(200);
    expect(typeof r.json().output).toBe('string');
  });

  it('rebuilds and answers the full server with metadata in the 202', async () => {
    const r = await action(h, 'alice', id, {
      rebuild: { imageRef: 'cirros', name: 'rebuilt', metadata: { v: '2' } },
    });
    expect(r.statusCode).toBe(202);
    expect(r.json().server).toMatchObject({ id, metadata: { v: '2' }, image: { id: 'cirros' } });
    await waitForStatus(h, id, 'ACTIVE');
    const shown = (await h.call('alice', { method: 'GET', url: `/v2.1/servers/${id}` })).json().server;
    expect(shown).toMatchObject({ name: 'rebuilt', metadata: { v: '2' } });
  });

  it('snapshots into an image that exists before the 202 (image_id body from 2.45, Location before)', async () => {
    const r = await action(h, 'alice', id, { createImage: { name: 'snap-1' } }, mv('2.45'));
    expect(r.statusCode).toBe(202);
    const imageId = r.json().image_id as string;
    expect(await h.services.engine.images.get(imageId)).toMatchObject({ id: imageId, name: 'snap-1' });
    expect(snapshots.at(-1)).toMatchObject({ imageId, ownerProjectId: 'p1' });
    const old = await action(h, 'alice', id, { createImage: { name: 'snap-2' } });
    expect(old.statusCode).toBe(202);
    expect(old.headers.location).toMatch(/\/images\/[^/]+$/);
    const second = String(old.headers.location).split('/').pop()!;
    expect(await h.services.engine.images.get(second)).toMatchObject({ name: 'snap-2' });
  });

  it('refuses an unknown action, an unsupported one and a body with two actions, naming them', async () => {
    const unknown = await action(h, 'alice', id, { explode: null });
    expect(unknown.statusCode).toBe(400);
    const unsupported = await action(h, 'alice', id, { changePassword: { adminPass: 'x' } });
    expect(unsupported.statusCode).toBe(400);
    expect(unsupported.json().badRequest.message).toContain('changePassword');
    const two = await action(h, 'alice', id, { pause: null, unpause: null });
    expect(two.statusCode).toBe(400);
  });

  it('lists the instance actions newest first and shows one with its events for admins only', async () => {
    const list = await h.call('alice', { method: 'GET', url: `/v2.1/servers/${id}/os-instance-actions` });
    expect(list.statusCode).toBe(200);
    const actions = list.json().instanceActions as {
      action: string;
      request_id: string;
      start_time: string;
    }[];
    expect(actions.at(-1)!.action).toBe('create');
    expect(actions.map((a) => a.action)).toEqual(
      expect.arrayContaining(['stop', 'start', 'reboot', 'pause', 'rebuild', 'createImage']),
    );
    expect(actions[0]!.start_time >= actions.at(-1)!.start_time).toBe(true);
    const stop = actions.find((a) => a.action === 'stop')!;
    expect(stop.request_id).toMatch(/^req-/);
    const member = await h.call('alice', {
      method: 'GET',
      url: `/v2.1/servers/${id}/os-instance-actions/${stop.request_id}`,
    });
    expect(member.statusCode).toBe(200);
    expect(member.json().instanceAction).toMatchObject({ action: 'stop', instance_uuid: id, message: null });
    expect(member.json().instanceAction.events).toBeUndefined();
    const admin = await h.call('admin', {
      method: 'GET',
      url: `/v2.1/servers/${id}/os-instance-actions/${stop.request_id}`,
    });
    expect(admin.json().instanceAction.events[0]).toMatchObject({
      event: 'compute_stop_instance',
      result: 'Success',
    });
    const missing = await h.call('alice', {
      method: 'GET',
      url: `/v2.1/servers/${id}/os-instance-actions/req-nope`,
    });
    expect(missing.statusCode).toBe(404);
  });

  it('manages metadata: merge, replace, one item, delete; refuses bad keys', async () => {
    const url = `/v2.1/servers/${id}/metadata`;
    expect(
      (await h.call('alice', { method: 'PUT', url, payload: { metadata: { a: '1' } } })).json().metadata,
    ).toEqual({ a: '1' });
    expect(
      (await h.call('alice', { method: 'POST', url, payload: { metadata: { b: '2' } } })).json().metadata,
    ).toEqual({ a: '1', b: '2' });
    expect((await h.call('alice', { method: 'GET', url: `${url}/b` })).json().meta).toEqual({ b: '2' });
    expect(
      (await h.call('alice', { method: 'PUT', url: `${url}/c`, payload: { meta: { c: '3' } } })).statusCode,
    ).toBe(200);
    expect(
      (await h.call('alice', { method: 'PUT', url: `${url}/c`, payload: { meta: { d: '3' } } })).statusCode,
    ).toBe(400);
    expect((await h.call('alice', { method: 'DELETE', url: `${url}/a` })).statusCode).toBe(204);
    expect((await h.call('alice', { method: 'GET', url: `${url}/a` })).statusCode).toBe(404);
    expect((await h.call('alice', { method: 'GET', url })).json().metadata).toEqual({ b: '2', c: '3' });
    expect(
      (await h.call('rita', { method: 'POST', url, payload: { metadata: { x: '1' } } })).statusCode,
    ).toBe(403);
    const hostile = await h.call('alice', {
      method: 'POST',
      url,
      payload: { metadata: { ['k'.repeat(256)]: 'v' } },
    });
    expect(hostile.statusCode).toBe(400);
  });
});

describe('evacuate (admin, a down host)', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await serversHarness();
  });
  afterAll(() => h.close());

  it('rebuilds the server of a down host on another host; refused for members and for a live host', async () => {
    const id = await createServer(h, 'alice', { name: 'moving' });
    const before = await waitForStatus(h, id, 'ACTIVE');
    const from = before['OS-EXT-SRV-ATTR:host'] as string;
    const live = await action(h, 'admin', id, { evacuate: {} });
    expect(live.statusCode).toBe(400);
    expect(live.json().badRequest.message).toContain('is still in use');
    const hostId = (await h.services.engine.get(id)).hostId!;
    await h.services.engine.hosts.setStatus(hostId, { up: false });
    expect((await action(h, 'alice', id, { evacuate: {} })).statusCode).toBe(403);
    expect((await action(h, 'admin', id, { evacuate: { host: 'host-1' } })).statusCode).toBe(400);
    const r = await action(h, 'admin', id, { evacuate: {} }, mv('2.14'));
    expect(r.statusCode).toBe(200);
    let after = await waitForStatus(h, id, 'ACTIVE');
    for (let i = 0; i < 50 && after['OS-EXT-SRV-ATTR:host'] === from; i++)
      after = await waitForStatus(h, id, 'ACTIVE');
    expect(after['OS-EXT-SRV-ATTR:host']).not.toBe(from);
    const actions = (
      await h.call('admin', { method: 'GET', url: `/v2.1/servers/${id}/os-instance-actions` })
    ).json().instanceActions as { action: string }[];
    expect(actions.map((a) => a.action)).toContain('evacuate');
  });
});
