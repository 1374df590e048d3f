import { describe, expect, it } from 'vitest';
import {
  CapabilityUnsupportedError,
  DriverError,
  ErrorCode,
  InstanceLockedError,
  InvalidStateError,
  NotFoundError,
  ValidationError,
} from '../errors.js';
import { createFakeCloud } from '../testing/engine-fixture.js';
import { cloudWithInstance, MemoryNetwork } from '../testing/memory-adapters.js';

const cloudWith = (a: MemoryNetwork, capabilities?: { interfaceAttach: boolean }) =>
  cloudWithInstance({ network: a }, capabilities);

const owner = { userId: 'u1', projectId: 'p1', isAdmin: false };

describe('interface attach and detach', () => {
  it('attaches a new port on a network and an existing port, records both, and releases each as Neutron would on detach', async () => {
    const network = new MemoryNetwork(['net-a', 'net-b']);
    network.precreate('user-port', 'net-b');
    const { compute, vm, driver } = await cloudWith(network);

    const one = await compute.attachInterface(vm.id, { networkId: 'net-a' }, owner);
    expect(one).toMatchObject({ vmState: 'active', taskState: null, powerState: 'running', fault: null });
    expect(one.ports).toHaveLength(1);
    const made = one.ports![0]!;
    expect(made).toMatchObject({ networkId: 'net-a', macAddress: expect.stringMatching(/^fa:16:3e:/) });
    expect(driver.guest(vm.id)?.interfaces).toEqual({ [made.portId]: made.macAddress });

    const two = await compute.attachInterface(vm.id, { portId: 'user-port' }, owner);
    expect(two.ports?.map((p) => [p.portId, p.networkId])).toEqual([
      [made.portId, 'net-a'],
      ['user-port', 'net-b'],
    ]);
    expect(network.boundTo(vm.id).sort()).toEqual([made.portId, 'user-port'].sort());

    // the port made for the network goes; the one made beforehand is unbound and kept
    expect((await compute.detachInterface(vm.id, made.portId, owner)).ports?.map((p) => p.portId)).toEqual([
      'user-port',
    ]);
    expect(network.ports.has(made.portId)).toBe(false);
    await compute.detachInterface(vm.id, 'user-port', owner);
    expect(network.ports.get('user-port')).toMatchObject({ boundTo: null });
    expect(driver.guest(vm.id)?.interfaces).toEqual({});
    expect((await compute.listActions(vm.id)).map((a) => [a.action, a.result])).toEqual([
      ['create', 'success'],
      ['attach_interface', 'success'],
      ['attach_interface', 'success'],
      ['detach_interface', 'success'],
      ['detach_interface', 'success'],
    ]);
    await compute.close();
  });

  it('attaches to a stopped or paused instance and keeps its state; refuses a suspended one before asking the adapter', async () => {
    const network = new MemoryNetwork(['net-a']);
    const { compute, vm } = await cloudWith(network);
    await compute.powerOff(vm.id);
    const stopped = await compute.attachInterface(vm.id, {});
    expect(stopped).toMatchObject({ vmState: 'stopped', powerState: 'shutdown', taskState: null });
    expect(stopped.ports?.[0]?.networkId).toBe('net-a');
    await compute.powerOn(vm.id);
    await compute.pause(vm.id);
    expect(await compute.detachInterface(vm.id, stopped.ports![0]!.portId)).toMatchObject({
      vmState: 'paused',
      ports: [],
    });
    await compute.unpause(vm.id);
    await compute.suspend(vm.id);
    await expect(compute.attachInterface(vm.id, { networkId: 'net-a' })).rejects.toBeInstanceOf(
      InvalidStateError,
    );
    expect(network.ports.size).toBe(0);
    await compute.close();
  });

  it('refuses an unknown network or port and a port bound elsewhere with the typed error, binding nothing', async () => {
    const network = new MemoryNetwork(['net-a']);
    network.precreate('shared', 'net-a');
    const { compute, vm, request } = await cloudWith(network);
    const [other] = await compute.create(request({ name: 'other' }));
    await compute.attachInterface(other!.id, { portId: 'shared' });

    const noNet = await compute.attachInterface(vm.id, { networkId: 'net-x' }).catch((e: unknown) => e);
    expect(noNet).toBeInstanceOf(NotFoundError);
    expect((noNet as NotFoundError).details).toMatchObject({ field: 'networkId' });
    const noPort = await compute.attachInterface(vm.id, { portId: 'port-x' }).catch((e: unknown) => e);
    expect((noPort as NotFoundError).details).toMatchObject({ field: 'portId' });
    const inUse = await compute.attachInterface(vm.id, { portId: 'shared' }).catch((e: unknown) => e);
    expect((inUse as ValidationError).details.issues[0]?.path).toBe('portId');

    const after = await compute.get(vm.id);
    expect(after).toMatchObject({ vmState: 'active', taskState: null });
    expect(after.ports ?? []).toEqual([]);
    expect(network.boundTo(vm.id)).toEqual([]);
    expect(network.ports.get('shared')?.boundTo).toBe(other!.id);
    // the same port twice on one instance is refused before anything is asked
    const twice = await compute.attachInterface(other!.id, { portId: 'shared' }).catch((e: unknown) => e);
    expect((twice as ValidationError).details.issues[0]).toMatchObject({ path: 'portId', rule: 'attached' });
    await compute.close();
  });

  it('releases the port when the driver fails to plug it in, and keeps it when the driver fails to unplug it', async () => {
    const network = new MemoryNetwork(['net-a']);
    const { compute, vm, driver } = await cloudWith(network);
    driver.failNext('attachInterface', { times: 1, message: 'hot-plug refused' });
    await expect(compute.attachInterface(vm.id, { networkId: 'net-a' })).rejects.toBeInstanceOf(DriverError);
    const after = await compute.get(vm.id);
    expect(after).toMatchObject({ taskState: null, fault: { message: /hot-plug refused/ } });
    expect(after.ports ?? []).toEqual([]);
    expect(network.ports.size).toBe(0);
    expect(driver.guest(vm.id)?.interfaces).toBeUndefined();

    const attached = await compute.attachInterface(vm.id, { networkId: 'net-a' });
    const portId = attached.ports![0]!.portId;
    driver.failNext('detachInterface', { times: 1, message: 'device busy' });
    await expect(compute.detachInterface(vm.id, portId)).rejects.toBeInstanceOf(DriverError);
    expect((await compute.get(vm.id)).ports?.map((p) => p.portId)).toEqual([portId]);
    expect(network.boundTo(vm.id)).toEqual([portId]);
    await compute.close();
  });

  it('refuses a driver without hot-plug, a locked instance, hostile or conflicting input, and an unknown attachment', async () => {
    const network = new MemoryNetwork(['net-a']);
    const plain = await cloudWith(network, { interfaceAttach: false });
    const e = await plain.compute.attachInterface(plain.vm.id, {}).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CapabilityUnsupportedError);
    expect((e as CapabilityUnsupportedError).details).toMatchObject({ capability: 'interfaceAttach' });
    await plain.compute.close();

    const { compute, vm } = await cloudWith(network);
    for (const [input, field] of [
      [{ networkId: "net'; DROP TABLE instances;--" }, 'networkId'],
      [{ portId: '$(reboot)' }, 'portId'],
      [{ portId: 'a\u0000b' }, 'portId'],
      [{ networkId: '<interface type="bridge"/>' }, 'networkId'],
      [{ networkId: 'n'.repeat(10_000) }, 'networkId'],
      [{ networkId: 'net-a', portId: 'p' }, 'portId'],
      [{ networkId: 'net-a', fixedIps: [] }, 'fixedIps'],
    ] as const) {
      const bad = await compute.attachInterface(vm.id, input as never).catch((x: unknown) => x);
      expect(bad, JSON.stringify(input)).toBeInstanceOf(ValidationError);
      expect((bad as ValidationError).details.issues.map((i) => i.path)).toContain(field);
    }
    expect(await compute.detachInterface(vm.id, 'port-x').catch((x: unknown) => x)).toMatchObject({
      code: ErrorCode.NotFound,
      details: { field: 'portId' },
    });
    await expect(compute.detachInterface(vm.id, '`id`')).rejects.toBeInstanceOf(ValidationError);
    await expect(compute.attachInterface('no-such-instance', {})).rejects.toMatchObject({
      code: ErrorCode.NotFound,
    });
    await compute.lock(vm.id, { reason: 'hold' }, { userId: 'admin', projectId: 'admin', isAdmin: true });
    await expect(compute.attachInterface(vm.id, {}, owner)).rejects.toBeInstanceOf(InstanceLockedError);
    expect(network.ports.size).toBe(0);
    expect((await compute.get(vm.id)).taskState).toBeNull();
    await compute.close();
  });

  it('records the ports a create bound, detaches one, and releases the rest on delete', async () => {
    const network = new MemoryNetwork(['net-a', 'net-b']);
    const cloud = await createFakeCloud({ hosts: 1, core: { network } });
    const [vm] = await cloud.compute.create(
      cloud.request({ networks: [{ networkId: 'net-a' }, { networkId: 'net-b' }] }),
    );
    const created = await cloud.compute.get(vm!.id);
    expect(created.ports?.map((p) => p.networkId)).toEqual(['net-a', 'net-b']);
    const [first, second] = created.ports!;
    expect(cloud.drivers[0]!.guest(vm!.id)?.interfaces).toEqual({
      [first!.portId]: first!.macAddress,
      [second!.portId]: second!.macAddress,
    });
    await cloud.compute.detachInterface(vm!.id, first!.portId);
    expect(network.boundTo(vm!.id)).toEqual([second!.portId]);
    await cloud.compute.delete(vm!.id);
    expect(network.ports.size).toBe(0);
    await cloud.compute.close();
  });

  it('lets one of two racing attaches of the same port win; the loser leaves the winner bound', async () => {
    const network = new MemoryNetwork(['net-a']);
    network.precreate('p1', 'net-a');
    const { compute, vm, driver } = await cloudWith(network);
    const results = await Promise.allSettled([
      compute.attachInterface(vm.id, { portId: 'p1' }),
      compute.attachInterface(vm.id, { portId: 'p1' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const after = await compute.get(vm.id);
    expect(after.ports?.map((p) => p.portId)).toEqual(['p1']);
    expect(after.taskState).toBeNull();
    expect(network.boundTo(vm.id)).toEqual(['p1']);
    expect(Object.keys(driver.guest(vm.id)?.interfaces ?? {})).toEqual(['p1']);
    await compute.close();
  });
});
