import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ComputeEngine,
  createCompute,
  type NetworkAdapter,
  type StorageOption,
  type VolumeAdapter,
} from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { dropSchema, freshSchema, pgUrl, postgresAvailable } from './sql-env.test-helper.js';

const flavors = [
  { id: 'm1', vcpus: 1, ramMb: 256 },
  { id: 'm2', vcpus: 2, ramMb: 512 },
];
const image = { id: 'img', name: 'img', diskFormat: 'raw' as const, sha256: '5'.repeat(64) };
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A storage option of `dialect` that two engines opened one after the other share. */
function storageOf(dialect: 'sqlite' | 'postgres'): StorageOption {
  if (dialect === 'sqlite') return { kind: 'sqlite', dataDir: mkdtempSync(join(tmpdir(), 'nlfs-moves-')) };
  const schema = freshSchema();
  cleanups.push(() => dropSchema(schema));
  return { kind: 'postgres', url: pgUrl, schema };
}

/** An engine on `storage` over the given fake hosts (they outlive the engine, as real hosts do). */
async function open(
  storage: StorageOption,
  drivers: readonly FakeDriver[],
  adapters: { volumes?: VolumeAdapter; network?: NetworkAdapter } = {},
): Promise<ComputeEngine> {
  const compute = await createCompute({
    storage,
    ...adapters,
    flavors,
    hosts: drivers.map((driver, i) => ({ id: `h${i}`, driver })),
  });
  cleanups.push(() => compute.close());
  return compute;
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  const enabled = dialect === 'sqlite' || postgresAvailable;
  describe.skipIf(!enabled)(`moves and locks persisted on ${dialect}`, () => {
    it('keeps a lock and its reason across a restart of the engine, and the lock and unlock actions', async () => {
      const storage = storageOf(dialect);
      const drivers = [new FakeDriver()];
      const first = await open(storage, drivers);
      await first.images.register(image, { kind: 'bytes', bytes: new Uint8Array() });
      const [vm] = await first.create({
        name: 'a',
        projectId: 'p',
        userId: 'u',
        flavorId: 'm1',
        imageId: 'img',
      });
      await first.lock(
        vm!.id,
        { reason: 'audit' },
        { userId: 'u', projectId: 'p', isAdmin: true, requestId: 'req-lock' },
      );
      await first.close();
      const second = await open(storage, drivers);
      await second.open();
      const again = await second.get(vm!.id);
      expect(again.locked).toMatchObject({ by: 'admin', reason: 'audit', userId: 'u' });
      await expect(second.powerOff(vm!.id, { userId: 'u', projectId: 'p' })).rejects.toMatchObject({
        code: 'NLFS_INSTANCE_LOCKED',
      });
      expect((await second.unlock(vm!.id)).locked).toBeNull();
      // both recorded as finished in the units that changed the lock (start and end in one unit)
      const actions = await second.listActions(vm!.id);
      expect(actions.map((a) => [a.action, a.result])).toEqual([
        ['create', 'success'],
        ['lock', 'success'],
        ['unlock', 'success'],
      ]);
      expect(actions[1]).toMatchObject({ requestId: 'req-lock', userId: 'u', projectId: 'p', fault: null });
      expect(actions[1]!.finishedAt).toBe(actions[1]!.startedAt);
      expect(actions[2]).toMatchObject({ userId: null, projectId: null });
      expect(actions[2]!.finishedAt).toBe(actions[2]!.startedAt);
    });

    it('keeps a resize waiting for its confirm, its claims, its quota and its migration record across a restart', async () => {
      const storage = storageOf(dialect);
      const drivers = [new FakeDriver(), new FakeDriver()];
      const first = await open(storage, drivers);
      await first.images.register(image, { kind: 'bytes', bytes: new Uint8Array() });
      const [vm] = await first.create({
        name: 'r',
        projectId: 'p',
        userId: 'u',
        flavorId: 'm1',
        imageId: 'img',
      });
      const [from, to] = vm!.hostId === 'h0' ? ['h0', 'h1'] : ['h1', 'h0'];
      const resized = await first.resize(vm!.id, 'm2');
      expect(resized).toMatchObject({ vmState: 'resized', hostId: to });
      expect((await first.quotas.get('p')).inUse).toEqual({ instances: 1, cores: 2, ramMb: 512 });
      await first.close();

      const second = await open(storage, drivers);
      const report = await second.open();
      expect(report.releasedClaims).toEqual([]);
      expect(report.orphans).toEqual([]);
      const again = await second.get(vm!.id);
      expect(again.move).toMatchObject({ sourceHostId: from, destHostId: to });
      // the start-up recount counts the bigger flavor while the resize waits
      expect((await second.quotas.get('p')).inUse).toEqual({ instances: 1, cores: 2, ramMb: 512 });
      const [migration] = await second.migrations.list({ instanceId: vm!.id });
      expect(migration).toMatchObject({
        kind: 'resize',
        status: 'finished',
        sourceHostId: from,
        destHostId: to,
      });
      const reverted = await second.revertResize(vm!.id);
      expect(reverted).toMatchObject({ vmState: 'active', hostId: from });
      expect(reverted.flavor.id).toBe('m1');
      expect((await second.quotas.get('p')).inUse).toEqual({ instances: 1, cores: 1, ramMb: 256 });
      expect(drivers[Number(to!.slice(1))]!.hasGuest(vm!.id)).toBe(false);
      expect(drivers[Number(from!.slice(1))]!.guest(vm!.id)?.vcpus).toBe(1);
      expect(await second.migrations.list({ status: 'reverted' })).toHaveLength(1);
      expect(await second.migrations.list({ status: ['finished', 'error'] })).toHaveLength(0);
    });

    it('keeps the volumes and ports attached to an instance across a restart, so the next engine detaches the same devices', async () => {
      const storage = storageOf(dialect);
      const drivers = [new FakeDriver()];
      const connected = new Map<string, string>();
      const volumes: VolumeAdapter = {
        connect: async (instance, _host, requests) =>
          requests.map((r) => {
            connected.set(r.volumeId, instance.id);
            return {
              volumeId: r.volumeId,
              ...(r.device ? { device: r.device } : {}),
              connection: { path: `/v/${r.volumeId}` },
            };
          }),
        disconnect: async (instance, _host, ids) => {
          for (const [id, on] of connected)
            if (on === instance.id && (!ids || ids.includes(id))) connected.delete(id);
        },
      };
      const bound = new Set<string>();
      const network: NetworkAdapter = {
        allocate: async (_instance, requests) =>
          requests.map((r) => {
            const portId = r.portId ?? `port-${bound.size + 1}`;
            bound.add(portId);
            return {
              portId,
              networkId: r.networkId ?? 'net',
              macAddress: 'fa:16:3e:00:00:01',
              ipAddresses: ['10.0.0.2'],
              binding: { vifType: 'ethernet', tap: `tap${portId}` },
            };
          }),
        deallocate: async (_instance, ids) => {
          for (const id of [...bound]) if (!ids || ids.includes(id)) bound.delete(id);
        },
      };
      const first = await open(storage, drivers, { volumes, network });
      await first.images.register(image, { kind: 'bytes', bytes: new Uint8Array() });
      const [vm] = await first.create({
        name: 'a',
        projectId: 'p',
        userId: 'u',
        flavorId: 'm1',
        imageId: 'img',
      });
      await first.attachVolume(vm!.id, { volumeId: 'data', device: 'vdd' });
      await first.attachInterface(vm!.id, { networkId: 'net' });
      await first.close();
      const second = await open(storage, drivers, { volumes, network });
      await second.open();
      expect((await second.get(vm!.id)).volumes).toEqual([
        { volumeId: 'data', device: 'vdd', connection: { path: '/v/data' } },
      ]);
      await expect(second.attachVolume(vm!.id, { volumeId: 'data' })).rejects.toMatchObject({
        details: { issues: [{ path: 'volumeId', rule: 'attached' }] },
      });
      expect((await second.detachVolume(vm!.id, 'data')).volumes).toEqual([]);
      expect(drivers[0]!.guest(vm!.id)?.volumes).toEqual({});
      expect(connected.size).toBe(0);
      expect((await second.get(vm!.id)).ports).toEqual([
        {
          portId: 'port-1',
          networkId: 'net',
          macAddress: 'fa:16:3e:00:00:01',
          ipAddresses: ['10.0.0.2'],
          binding: { vifType: 'ethernet', tap: 'tapport-1' },
        },
      ]);
      expect((await second.detachInterface(vm!.id, 'port-1')).ports).toEqual([]);
      expect(drivers[0]!.guest(vm!.id)?.interfaces).toEqual({});
      expect(bound.size).toBe(0);
    });
  });
}
