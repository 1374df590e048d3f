import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalVolumeAdapter } from '@nova-lfs/volume-local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import {
  action,
  createServer,
  mv,
  serversHarness,
  waitForInstance,
  waitForStatus,
} from './servers.test-helper.js';

const attachments = (id: string) => `/v2.1/servers/${id}/os-volume_attachments`;

describe('os-volume_attachments over FAKE hosts and file-backed volumes', () => {
  let h: ApiHarness;
  let volumes: LocalVolumeAdapter;
  let dir: string;
  let vm: string;

  const attach = (
    token: string,
    id: string,
    volumeAttachment: unknown,
    headers: Record<string, string> = {},
  ) =>
    h.call(token, { method: 'POST', url: attachments(id), payload: { volumeAttachment } as object, headers });
  const detach = (token: string, id: string, volumeId: string) =>
    h.call(token, { method: 'DELETE', url: `${attachments(id)}/${volumeId}` });
  const list = (token: string | null, id: string, headers: Record<string, string> = {}) =>
    h.call(token, { method: 'GET', url: attachments(id), headers });
  const show = (token: string, id: string, volumeId: string, headers: Record<string, string> = {}) =>
    h.call(token, { method: 'GET', url: `${attachments(id)}/${volumeId}`, headers });
  /** Detaches through the API and waits until the engine has finished it. */
  const detached = async (id: string, volumeId: string) => {
    const r = await detach('alice', id, volumeId);
    expect(r.statusCode, r.body).toBe(202);
    return waitForInstance(
      h.services.engine,
      id,
      (i) => !(i.volumes ?? []).some((v) => v.volumeId === volumeId),
    );
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nlfs-volapi-'));
    volumes = new LocalVolumeAdapter(join(dir, 'volumes'));
    for (const id of ['vol-a', 'vol-b', 'vol-c', 'vol-d', 'vol-e']) await volumes.create({ id, sizeMiB: 1 });
    h = await serversHarness({ cloud: { hosts: 1, core: { volumes } } });
    vm = await createServer(h, 'alice', { name: 'attach-me' });
    await waitForStatus(h, vm, 'ACTIVE');
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('attaches a volume on the device asked (200), lists, shows it and the server body names it', async () => {
    const r = await attach('alice', vm, { volumeId: 'vol-a', device: '/dev/vdc' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toEqual({
      volumeAttachment: { id: 'vol-a', volumeId: 'vol-a', serverId: vm, device: '/dev/vdc' },
    });
    // the engine, the volume file's record and the hypervisor agree
    const instance = await h.services.engine.get(vm);
    expect(instance.volumes?.map((v) => [v.volumeId, v.device])).toEqual([['vol-a', 'vdc']]);
    expect((await volumes.get('vol-a')).attachedTo).toBe(vm);
    expect(h.cloud.drivers[0]!.guest(vm)?.volumes).toEqual({ 'vol-a': 'vdc' });

    expect((await list('alice', vm)).json()).toEqual({
      volumeAttachments: [{ id: 'vol-a', volumeId: 'vol-a', serverId: vm, device: '/dev/vdc' }],
    });
    expect((await show('alice', vm, 'vol-a')).json()).toEqual({
      volumeAttachment: { id: 'vol-a', volumeId: 'vol-a', serverId: vm, device: '/dev/vdc' },
    });
    const old = (await h.call('alice', { method: 'GET', url: `/v2.1/servers/${vm}` })).json().server;
    expect(old['os-extended-volumes:volumes_attached']).toEqual([{ id: 'vol-a' }]);
    const newer = (
      await h.call('alice', { method: 'GET', url: `/v2.1/servers/${vm}`, headers: mv('2.3') })
    ).json().server;
    expect(newer['os-extended-volumes:volumes_attached']).toEqual([
      { id: 'vol-a', delete_on_termination: false },
    ]);
  });

  it('picks the first free vdX when no device is asked, and the answer names it', async () => {
    const b = await attach('alice', vm, { volumeId: 'vol-b' });
    expect(b.statusCode, b.body).toBe(200);
    expect(b.json().volumeAttachment.device).toBe('/dev/vdb');
    const c = await attach('alice', vm, { volumeId: 'vol-c', device: null });
    expect(c.json().volumeAttachment.device).toBe('/dev/vdd');
    expect(h.cloud.drivers[0]!.guest(vm)?.volumes).toEqual({
      'vol-a': 'vdc',
      'vol-b': 'vdb',
      'vol-c': 'vdd',
    });
    const all = (await list('alice', vm)).json().volumeAttachments as { volumeId: string; device: string }[];
    expect(all.map((v) => [v.volumeId, v.device])).toEqual([
      ['vol-a', '/dev/vdc'],
      ['vol-b', '/dev/vdb'],
      ['vol-c', '/dev/vdd'],
    ]);
    // Nova's limit and offset
    const page = await h.call('alice', { method: 'GET', url: `${attachments(vm)}?limit=1&offset=1` });
    expect(page.json().volumeAttachments.map((v: { volumeId: string }) => v.volumeId)).toEqual(['vol-b']);
    const bad = await h.call('alice', { method: 'GET', url: `${attachments(vm)}?limit=-1` });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().badRequest.message).toContain('query.limit');
  });

  it('adds tag from 2.70 and refuses a microversion above the 2.73 it serves', async () => {
    const shown = (await show('alice', vm, 'vol-a', mv('2.70'))).json().volumeAttachment;
    expect(shown).toEqual({ id: 'vol-a', volumeId: 'vol-a', serverId: vm, device: '/dev/vdc', tag: null });
    const listed = (await list('alice', vm, mv('2.73'))).json().volumeAttachments;
    expect(listed.every((v: Record<string, unknown>) => v.tag === null)).toBe(true);
    expect((await list('alice', vm, mv('2.69'))).json().volumeAttachments[0]).not.toHaveProperty('tag');
    const over = await list('alice', vm, mv('2.79'));
    expect(over.statusCode).toBe(406);
  });

  it('refuses what Nova refuses: an attached volume (400), a busy device (409), an unknown volume (404)', async () => {
    const again = await attach('alice', vm, { volumeId: 'vol-a' });
    expect(again.statusCode).toBe(400);
    expect(again.json().badRequest.message).toBe(
      `Invalid volume: volume vol-a is already attached to instance ${vm}`,
    );
    const busy = await attach('alice', vm, { volumeId: 'vol-d', device: '/dev/vdb' });
    expect(busy.statusCode).toBe(409);
    expect(busy.json().conflictingRequest.message).toBe('The supplied device path (/dev/vdb) is in use.');
    const unknown = await attach('alice', vm, { volumeId: 'vol-nope' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().itemNotFound.message).toBe('Volume vol-nope could not be found.');
    // a volume attached to another server is in use: 400 as Nova's InvalidVolume
    const other = await createServer(h, 'alice', { name: 'other' });
    await waitForStatus(h, other, 'ACTIVE');
    const inUse = await attach('alice', other, { volumeId: 'vol-a' });
    expect(inUse.statusCode).toBe(400);
    expect(inUse.json().badRequest.message).toBe(
      `Invalid volume: volume vol-a is attached to instance ${vm}`,
    );
    expect((await volumes.get('vol-a')).attachedTo).toBe(vm);
    expect((await volumes.get('vol-d')).attachedTo).toBeUndefined();
    expect((await h.services.engine.get(other)).volumes ?? []).toEqual([]);
  });

  it('refuses malformed and hostile bodies with a 400 naming the field, asking the engine nothing', async () => {
    const actionsBefore = (await h.services.engine.listActions(vm)).length;
    const cases: [unknown, string][] = [
      [{}, 'volumeId'],
      [{ volumeId: 'vol-d', extra: 1 }, 'extra'],
      [{ volumeId: "vol'; DROP TABLE instances;--" }, 'volumeId'],
      [{ volumeId: 'vol-d$(reboot)' }, 'volumeId'],
      [{ volumeId: '<volume>x</volume>' }, 'volumeId'],
      [{ volumeId: '{"a":1}' }, 'volumeId'],
      [{ volumeId: 'vol\u0000d' }, 'volumeId'],
      [{ volumeId: 'v'.repeat(10_000) }, 'volumeId'],
      [{ volumeId: 7 }, 'volumeId'],
      [{ volumeId: 'vol-d', device: 'vdb' }, 'device'],
      [{ volumeId: 'vol-d', device: '/dev/vdb; rm -rf /' }, 'device'],
      [{ volumeId: 'vol-d', device: '/dev/<disk/>' }, 'device'],
      [{ volumeId: 'vol-d', device: '/dev/vd\u0000b' }, 'device'],
      [{ volumeId: 'vol-d', device: `/dev/${'x'.repeat(10_000)}` }, 'device'],
      [{ volumeId: 'vol-d', tag: 'db' }, 'tag'],
    ];
    for (const [body, field] of cases) {
      const r = await attach('alice', vm, body);
      expect(r.statusCode, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(r.json().badRequest.message).toContain(field);
      expect(r.body.length).toBeLessThan(1000);
    }
    for (const payload of [
      {},
      { volumeAttachment: 'vol-d' },
      { volumeAttachment: { volumeId: 'vol-d' }, x: 1 },
    ]) {
      const r = await h.call('alice', { method: 'POST', url: attachments(vm), payload });
      expect(r.statusCode, JSON.stringify(payload)).toBe(400);
    }
    // tag is in the schema from 2.49, but this cloud keeps no device tags
    const tagged = await attach('alice', vm, { volumeId: 'vol-d', tag: 'db' }, mv('2.49'));
    expect(tagged.statusCode).toBe(400);
    expect(tagged.json().badRequest.message).toBe('Tagged volume attachment is not supported by this cloud.');
    expect((await h.services.engine.listActions(vm)).length).toBe(actionsBefore);
    expect((await volumes.get('vol-d')).attachedTo).toBeUndefined();
  });

  it('detaches (202), then the volume is gone from every view and free; a second detach is 404', async () => {
    const after = await detached(vm, 'vol-b');
    expect(after.volumes?.map((v) => v.volumeId)).toEqual(['vol-a', 'vol-c']);
    expect(h.cloud.drivers[0]!.guest(vm)?.volumes).toEqual({ 'vol-a': 'vdc', 'vol-c': 'vdd' });
    expect((await volumes.get('vol-b')).attachedTo).toBeUndefined();
    const missing = await detach('alice', vm, 'vol-b');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().itemNotFound.message).toBe(`Instance ${vm} is not attached to volume vol-b`);
    expect((await show('alice', vm, 'vol-b')).statusCode).toBe(404);
    expect((await show('alice', vm, "x'; DROP TABLE x;--")).statusCode).toBe(404);
    // the freed disk is picked again
    expect((await attach('alice', vm, { volumeId: 'vol-b' })).json().volumeAttachment.device).toBe(
      '/dev/vdb',
    );
    await detached(vm, 'vol-b');
    await detached(vm, 'vol-c');
  });

  it('answers 409 for a suspended server and for a locked one (an admin may still act), 404 for an unknown one', async () => {
    const s = await createServer(h, 'alice', { name: 'states' });
    await waitForStatus(h, s, 'ACTIVE');
    expect((await action(h, 'alice', s, { suspend: null })).statusCode).toBe(202);
    await waitForStatus(h, s, 'SUSPENDED');
    const suspended = await attach('alice', s, { volumeId: 'vol-d' });
    expect(suspended.statusCode).toBe(409);
    expect(suspended.json().conflictingRequest.message).toBe(
      `Cannot 'attach_volume' instance ${s} while it is in vm_state suspended`,
    );
    expect((await action(h, 'alice', s, { resume: null })).statusCode).toBe(202);
    await waitForStatus(h, s, 'ACTIVE');

    expect((await action(h, 'admin', s, { lock: null })).statusCode).toBe(202);
    const locked = await attach('alice', s, { volumeId: 'vol-d' });
    expect(locked.statusCode).toBe(409);
    expect(locked.json().conflictingRequest.message).toContain('locked');
    const byAdmin = await attach('admin', s, { volumeId: 'vol-d' });
    expect(byAdmin.statusCode, byAdmin.body).toBe(200);
    const lockedDetach = await detach('alice', s, 'vol-d');
    expect(lockedDetach.statusCode).toBe(409);
    expect((await action(h, 'admin', s, { unlock: null })).statusCode).toBe(202);
    await detached(s, 'vol-d');
    expect((await volumes.get('vol-d')).attachedTo).toBeUndefined();

    const nobody = '00000000-0000-4000-8000-000000000000';
    expect((await list('alice', nobody)).statusCode).toBe(404);
    expect((await show('alice', nobody, 'vol-a')).statusCode).toBe(404);
    expect((await attach('alice', nobody, { volumeId: 'vol-d' })).statusCode).toBe(404);
    expect((await detach('alice', nobody, 'vol-a')).statusCode).toBe(404);
  });

  it("hides a server from another project's member (404) and lets a reader list but not attach or detach", async () => {
    for (const r of [
      await list('bob', vm),
      await show('bob', vm, 'vol-a'),
      await attach('bob', vm, { volumeId: 'vol-e' }),
      await detach('bob', vm, 'vol-a'),
    ]) {
      expect(r.statusCode, r.body).toBe(404);
      expect(r.json().itemNotFound.message).toBe(`Instance ${vm} could not be found.`);
    }
    expect((await list('rita', vm)).statusCode).toBe(200);
    expect((await show('rita', vm, 'vol-a')).statusCode).toBe(200);
    const readerAttach = await attach('rita', vm, { volumeId: 'vol-e' });
    expect(readerAttach.statusCode).toBe(403);
    expect(readerAttach.json().forbidden.message).toContain('os_compute_api:os-volumes-attachments:create');
    expect((await detach('rita', vm, 'vol-a')).statusCode).toBe(403);
    expect((await list(null, vm)).statusCode).toBe(401);
    // the admin sees every project's server
    expect((await list('admin', vm)).json().volumeAttachments).toHaveLength(1);
    expect((await volumes.get('vol-e')).attachedTo).toBeUndefined();
    expect((await h.services.engine.get(vm)).volumes?.map((v) => v.volumeId)).toEqual(['vol-a']);
  });

  it("answers swap (PUT) with Nova's 501 for an attached volume, 404 for one that is not", async () => {
    const put = (token: string, volumeId: string) =>
      h.call(token, {
        method: 'PUT',
        url: `${attachments(vm)}/${volumeId}`,
        payload: { volumeAttachment: { volumeId: 'vol-e' } },
      });
    const swap = await put('alice', 'vol-a');
    expect(swap.statusCode).toBe(501);
    expect(swap.json().notImplemented.message).toContain('not supported');
    expect((await put('alice', 'vol-b')).statusCode).toBe(404);
    expect((await put('rita', 'vol-a')).statusCode).toBe(403);
    expect((await put('bob', 'vol-a')).statusCode).toBe(404);
    expect((await h.services.engine.get(vm)).volumes?.map((v) => v.volumeId)).toEqual(['vol-a']);
  });

  it('gives concurrent attaches distinct devices, and shows the device the driver picked for one the engine attached without naming one', async () => {
    for (const id of ['vol-f', 'vol-g', 'vol-h', 'vol-i']) await volumes.create({ id, sizeMiB: 1 });
    const s = await createServer(h, 'alice', { name: 'busy' });
    await waitForStatus(h, s, 'ACTIVE');
    const answers = await Promise.all(
      ['vol-f', 'vol-g', 'vol-h'].map((volumeId) => attach('alice', s, { volumeId })),
    );
    expect(answers.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    const devices = answers.map((r) => r.json().volumeAttachment.device as string);
    expect([...devices].sort()).toEqual(['/dev/vdb', '/dev/vdc', '/dev/vdd']);
    const guest = h.cloud.drivers[0]!.guest(s)?.volumes ?? {};
    expect(['vol-f', 'vol-g', 'vol-h'].map((v) => `/dev/${guest[v]}`)).toEqual(devices);
    await detached(s, 'vol-g');
    await detached(s, 'vol-h');

    // attached by an engine caller without a device: the driver reports the disk it took, the
    // engine records it, and the API shows it (and the next attach gets another)
    await h.services.engine.attachVolume(s, { volumeId: 'vol-g' });
    const taken = h.cloud.drivers[0]!.guest(s)?.volumes?.['vol-g'];
    expect(taken).toMatch(/^vd[c-z]$/);
    const shown = (await show('alice', s, 'vol-g')).json().volumeAttachment;
    expect(shown).toEqual({ id: 'vol-g', volumeId: 'vol-g', serverId: s, device: `/dev/${taken}` });
    const next = await attach('alice', s, { volumeId: 'vol-i' });
    expect(next.statusCode, next.body).toBe(200);
    const nextDevice = next.json().volumeAttachment.device as string;
    expect(nextDevice).toBe(`/dev/${h.cloud.drivers[0]!.guest(s)?.volumes?.['vol-i']}`);
    expect(new Set([guest['vol-f'], taken, nextDevice.slice(5)]).size).toBe(3);
    // a device another volume holds is refused with Nova's 409
    const clash = await attach('alice', s, { volumeId: 'vol-h', device: `/dev/${taken}` });
    expect(clash.statusCode).toBe(409);
    // a device asked explicitly is still honoured
    const asked = await attach('alice', s, { volumeId: 'vol-h', device: '/dev/vdk' });
    expect(asked.json().volumeAttachment.device).toBe('/dev/vdk');
    for (const v of ['vol-f', 'vol-g', 'vol-i', 'vol-h']) await detached(s, v);
  });

  it('follows a policy file: attaching can be made admin-only', async () => {
    const strict = await serversHarness({
      cloud: { hosts: 1, core: { volumes } },
      policy: { 'os_compute_api:os-volumes-attachments:create': 'rule:context_is_admin' },
    });
    try {
      const s = await createServer(strict, 'alice');
      await waitForStatus(strict, s, 'ACTIVE');
      const r = await strict.call('alice', {
        method: 'POST',
        url: attachments(s),
        payload: { volumeAttachment: { volumeId: 'vol-e' } },
      });
      expect(r.statusCode).toBe(403);
      expect((await volumes.get('vol-e')).attachedTo).toBeUndefined();
    } finally {
      await strict.close();
    }
  });
});

describe('os-volume_attachments on a driver without hot-plug', () => {
  it('answers 409 (the driver cannot), connecting nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nlfs-volapi-plain-'));
    const volumes = new LocalVolumeAdapter(join(dir, 'volumes'));
    await volumes.create({ id: 'vol-x', sizeMiB: 1 });
    const h = await serversHarness({
      cloud: { hosts: 1, core: { volumes }, driver: { capabilities: { volumeAttach: false } } },
    });
    try {
      const vm = await createServer(h, 'alice');
      await waitForStatus(h, vm, 'ACTIVE');
      const r = await h.call('alice', {
        method: 'POST',
        url: attachments(vm),
        payload: { volumeAttachment: { volumeId: 'vol-x' } },
      });
      expect(r.statusCode).toBe(409);
      expect(r.json().conflictingRequest.message).toContain('volumeAttach');
      expect((await volumes.get('vol-x')).attachedTo).toBeUndefined();
      expect((await h.call('alice', { method: 'GET', url: attachments(vm) })).json()).toEqual({
        volumeAttachments: [],
      });
    } finally {
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('os-volume_attachments on an engine without a VolumeAdapter', () => {
  it('answers 404 for the volume (no volume is known), admins seeing why', async () => {
    const h = await serversHarness({ cloud: { hosts: 1 } });
    try {
      const vm = await createServer(h, 'alice');
      await waitForStatus(h, vm, 'ACTIVE');
      for (const [token, details] of [
        ['alice', undefined],
        ['admin', 'the engine has no VolumeAdapter configured'],
      ] as const) {
        const r = await h.call(token, {
          method: 'POST',
          url: attachments(vm),
          payload: { volumeAttachment: { volumeId: 'vol-x' } },
        });
        expect(r.statusCode).toBe(404);
        expect(r.json().itemNotFound.message).toBe('Volume vol-x could not be found.');
        expect(r.json().itemNotFound.details).toBe(details);
      }
      expect((await h.services.engine.get(vm)).volumes ?? []).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
