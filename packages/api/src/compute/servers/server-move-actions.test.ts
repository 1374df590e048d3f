import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { action, createServer, mv, serversHarness, waitForStatus } from './servers.test-helper.js';

describe('server actions that move or change a server', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await serversHarness();
  });
  afterAll(() => h.close());

  it('locks with a reason (2.73): the owner is refused with 409, an admin may act, the view shows the lock', async () => {
    const id = await createServer(h, 'alice', { name: 'locked' });
    await waitForStatus(h, id, 'ACTIVE');
    const old = await action(h, 'alice', id, { lock: { locked_reason: 'x' } }, mv('2.72'));
    expect(old.statusCode).toBe(400);
    expect((await action(h, 'alice', id, { lock: { locked_reason: 'audit' } }, mv('2.73'))).statusCode).toBe(
      202,
    );
    const shown = (
      await h.call('alice', { method: 'GET', url: `/v2.1/servers/${id}`, headers: mv('2.73') })
    ).json().server;
    expect(shown).toMatchObject({ locked: true, locked_reason: 'audit' });
    const refused = await action(h, 'alice', id, { 'os-stop': null });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().conflictingRequest.message).toContain('locked');
    expect((await h.call('alice', { method: 'DELETE', url: `/v2.1/servers/${id}` })).statusCode).toBe(409);
    expect((await action(h, 'admin', id, { 'os-stop': null })).statusCode).toBe(202);
    await waitForStatus(h, id, 'SHUTOFF');
    expect((await action(h, 'alice', id, { unlock: null })).statusCode).toBe(202);
    expect((await action(h, 'alice', id, { 'os-start': null })).statusCode).toBe(202);
    await waitForStatus(h, id, 'ACTIVE');
  });

  it("records lock and unlock in os-instance-actions with the caller's ids and request id, finished at once", async () => {
    const id = await createServer(h, 'alice', { name: 'lock-history' });
    await waitForStatus(h, id, 'ACTIVE');
    const locked = await action(h, 'alice', id, { lock: { locked_reason: 'audit' } }, mv('2.73'));
    expect(locked.statusCode).toBe(202);
    const unlocked = await action(h, 'admin', id, { unlock: null });
    expect(unlocked.statusCode).toBe(202);
    const list = await h.call('alice', {
      method: 'GET',
      url: `/v2.1/servers/${id}/os-instance-actions`,
      headers: mv('2.58'),
    });
    expect(list.statusCode).toBe(200);
    const actions = list.json().instanceActions as Array<Record<string, unknown>>;
    // newest first, in Nova's shape (the keys of the Zed samples)
    expect(actions.map((a) => a.action)).toEqual(['unlock', 'lock', 'create']);
    for (const a of actions)
      expect(Object.keys(a).sort()).toEqual([
        'action',
        'instance_uuid',
        'message',
        'project_id',
        'request_id',
        'start_time',
        'updated_at',
        'user_id',
      ]);
    expect(actions[1]).toEqual({
      action: 'lock',
      instance_uuid: id,
      request_id: locked.headers['x-openstack-request-id'],
      user_id: 'alice-id',
      project_id: 'p1',
      start_time: actions[1]!.start_time,
      message: null,
      updated_at: actions[1]!.start_time,
    });
    expect(actions[0]).toMatchObject({
      action: 'unlock',
      request_id: unlocked.headers['x-openstack-request-id'],
      user_id: 'admin-id',
      project_id: 'admin',
      message: null,
    });
    expect(actions[0]!.updated_at).toBe(actions[0]!.start_time);
    const shown = await h.call('admin', {
      method: 'GET',
      url: `/v2.1/servers/${id}/os-instance-actions/${String(actions[1]!.request_id)}`,
    });
    expect(shown.statusCode).toBe(200);
    const events = shown.json().instanceAction.events as Array<Record<string, unknown>>;
    expect(events).toEqual([
      {
        event: 'api_lock',
        start_time: actions[1]!.start_time,
        finish_time: actions[1]!.start_time,
        result: 'Success',
        traceback: null,
      },
    ]);
    // a refused unlock (an admin's lock, the owner asking) is not recorded
    expect((await action(h, 'admin', id, { lock: null })).statusCode).toBe(202);
    expect((await action(h, 'alice', id, { unlock: null })).statusCode).toBe(409);
    const after = await h.call('alice', { method: 'GET', url: `/v2.1/servers/${id}/os-instance-actions` });
    expect((after.json().instanceActions as Array<{ action: string }>).map((a) => a.action)).toEqual([
      'lock',
      'unlock',
      'lock',
      'create',
    ]);
  });

  it('resizes to VERIFY_RESIZE and confirms (204); cold migration is admin-only and reverts; os-migrations lists both', async () => {
    const id = await createServer(h, 'alice', { name: 'resized' });
    await waitForStatus(h, id, 'ACTIVE');
    const bad = await action(h, 'alice', id, { resize: { flavorRef: 'nope' } });
    expect(bad.statusCode).toBe(400);
    expect((await action(h, 'alice', id, { resize: { flavorRef: 'm1.large' } })).statusCode).toBe(202);
    const resized = await waitForStatus(h, id, 'VERIFY_RESIZE');
    expect(resized['OS-EXT-STS:vm_state']).toBe('resized');
    expect((await action(h, 'alice', id, { confirmResize: null })).statusCode).toBe(204);
    const active = await waitForStatus(h, id, 'ACTIVE');
    expect(
      (active.flavor as { original_name?: string; id?: string }).original_name ??
        (active.flavor as { id: string }).id,
    ).toBe('m1.large');
    expect((await action(h, 'alice', id, { migrate: null })).statusCode).toBe(403);
    expect((await action(h, 'admin', id, { migrate: null })).statusCode).toBe(202);
    await waitForStatus(h, id, 'VERIFY_RESIZE');
    expect((await action(h, 'alice', id, { revertResize: null })).statusCode).toBe(202);
    await waitForStatus(h, id, 'ACTIVE');
    expect((await h.call('alice', { method: 'GET', url: '/v2.1/os-migrations' })).statusCode).toBe(403);
    const listed = await h.call('admin', {
      method: 'GET',
      url: `/v2.1/os-migrations?instance_uuid=${id}`,
      headers: mv('2.59'),
    });
    expect(listed.statusCode).toBe(200);
    const migrations = listed.json().migrations as Array<Record<string, unknown>>;
    expect(migrations.map((m) => `${m.migration_type}:${m.status}`)).toEqual([
      'migration:reverted',
      'resize:confirmed',
    ]);
    expect(migrations[1]).toMatchObject({ instance_uuid: id, new_instance_type_id: 'm1.large' });
    const byType = await h.call('admin', {
      method: 'GET',
      url: '/v2.1/os-migrations?migration_type=resize',
      headers: mv('2.59'),
    });
    expect((byType.json().migrations as unknown[]).length).toBeGreaterThanOrEqual(1);
  });

  it('shelves to SHELVED_OFFLOADED and unshelves; rescues to RESCUE and unrescues', async () => {
    const id = await createServer(h, 'alice', { name: 'shelved' });
    await waitForStatus(h, id, 'ACTIVE');
    expect((await action(h, 'alice', id, { shelve: null })).statusCode).toBe(202);
    await waitForStatus(h, id, 'SHELVED_OFFLOADED');
    expect((await action(h, 'alice', id, { unshelve: null })).statusCode).toBe(202);
    await waitForStatus(h, id, 'ACTIVE');
    const rescued = await action(h, 'alice', id, { rescue: null });
    expect(rescued.statusCode).toBe(200);
    await waitForStatus(h, id, 'RESCUE');
    expect((await action(h, 'alice', id, { unrescue: null })).statusCode).toBe(202);
    await waitForStatus(h, id, 'ACTIVE');
  });

  it('live-migrates (admin), records the migration, and answers 404 for aborting one that is not running', async () => {
    const id = await createServer(h, 'alice', { name: 'live' });
    const before = await waitForStatus(h, id, 'ACTIVE');
    expect(
      (await action(h, 'alice', id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }))
        .statusCode,
    ).toBe(403);
    const hostBefore = (await h.services.engine.get(id)).hostId;
    expect(
      (
        await action(
          h,
          'admin',
          id,
          { 'os-migrateLive': { host: null, block_migration: 'auto' } },
          mv('2.25'),
        )
      ).statusCode,
    ).toBe(202);
    let after = await waitForStatus(h, id, 'ACTIVE');
    for (let i = 0; i < 50 && (await h.services.engine.get(id)).hostId === hostBefore; i++)
      after = await waitForStatus(h, id, 'ACTIVE');
    expect((await h.services.engine.get(id)).hostId).not.toBe(hostBefore);
    expect(after.id).toBe(before.id);
    const live = await h.call('admin', {
      method: 'GET',
      url: `/v2.1/os-migrations?migration_type=live-migration&instance_uuid=${id}`,
    });
    expect((live.json().migrations as Array<{ status: string }>).map((m) => m.status)).toEqual(['completed']);
    const running = await h.call('admin', { method: 'GET', url: `/v2.1/servers/${id}/migrations` });
    expect(running.json().migrations).toEqual([]);
    const abort = await h.call('admin', { method: 'DELETE', url: `/v2.1/servers/${id}/migrations/nope` });
    expect(abort.statusCode).toBe(404);
  });
});
