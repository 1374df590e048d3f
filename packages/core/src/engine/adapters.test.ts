import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import type { Instance } from '../model/instance.js';
import type { NetworkAdapter, NetworkRequest, PortBinding } from '../ports/network.js';
import type { BlockDevice, VolumeAdapter, VolumeRequest } from '../ports/volume.js';
import { createFakeCloud } from '../testing/engine-fixture.js';
import { internalsOf } from '../testing/internals.js';

/** Records what the engine asks of the adapters; holds ports/volumes per instance like a real backend. */
class RecordingAdapters implements NetworkAdapter, VolumeAdapter {
  readonly ports = new Map<string, PortBinding[]>();
  readonly volumes = new Map<string, BlockDevice[]>();
  readonly log: string[] = [];
  async allocate(instance: Instance, requests: readonly NetworkRequest[]): Promise<PortBinding[]> {
    const ports = requests.map((r, n) => ({
      portId: `${instance.id}-p${n}`,
      networkId: r.networkId ?? 'default',
    }));
    this.ports.set(instance.id, ports);
    this.log.push(`allocate ${instance.hostId} ${requests.map((r) => r.networkId).join(',')}`);
    return ports;
  }
  async deallocate(instance: Instance): Promise<void> {
    this.ports.delete(instance.id);
    this.log.push(`deallocate ${instance.hostId}`);
  }
  async connect(
    instance: Instance,
    hostId: string,
    requests: readonly VolumeRequest[],
  ): Promise<BlockDevice[]> {
    const devs = requests.map((r) => ({ volumeId: r.volumeId, connection: { path: `/dev/${r.volumeId}` } }));
    this.volumes.set(instance.id, devs);
    this.log.push(`connect ${hostId} ${requests.map((r) => r.volumeId).join(',')}`);
    return devs;
  }
  async disconnect(instance: Instance, hostId: string): Promise<void> {
    this.volumes.delete(instance.id);
    this.log.push(`disconnect ${hostId}`);
  }
}

describe('network and volume adapters', () => {
  it('prepare ports and volumes on the chosen host, release them after a failed attempt and on delete', async () => {
    const adapters = new RecordingAdapters();
    const cloud = await createFakeCloud({ hosts: 2, core: { network: adapters, volumes: adapters } });
    cloud.drivers[0]!.failNext('spawn', { times: 1 });
    const [vm] = await cloud.compute.create(
      cloud.request({ networks: [{ networkId: 'net-a' }], volumes: [{ volumeId: 'vol-1' }] }),
    );
    expect(vm!.hostId).toBe('host-1');
    expect(adapters.log).toEqual([
      'allocate host-0 net-a',
      'connect host-0 vol-1',
      'deallocate host-0',
      'disconnect host-0',
      'allocate host-1 net-a',
      'connect host-1 vol-1',
    ]);
    expect(adapters.ports.get(vm!.id)).toHaveLength(1);
    await cloud.compute.delete(vm!.id);
    expect(adapters.ports.size).toBe(0);
    expect(adapters.volumes.size).toBe(0);
  });
});

describe('validation at other boundaries', () => {
  it('rejects bad quota limits and server groups naming the field', async () => {
    const cloud = await createFakeCloud();
    const q = await internalsOf(cloud.compute)
      .quota.setLimits('p1', { cores: -5 })
      .catch((e) => e);
    expect(q).toBeInstanceOf(ValidationError);
    expect(q.fields).toEqual(['cores']);
    const g = await cloud.compute.serverGroups
      .create({ id: 'g1', name: 'g', projectId: 'p1', policy: 'sideways' as never })
      .catch((e) => e);
    expect(g).toBeInstanceOf(ValidationError);
    expect(g.fields).toEqual(['policy']);
    const ok = await cloud.compute.serverGroups.create({
      id: 'g2',
      name: 'g',
      projectId: 'p1',
      policy: 'affinity',
    });
    expect(ok.members).toEqual([]);
  });

  it('rejects a host whose driver reports an invalid inventory, naming the field', async () => {
    const cloud = await createFakeCloud({ hosts: 0 });
    const { FakeDriver } = await import('../testing/fake-driver.js');
    const bad = new FakeDriver({ inventory: { VCPU: { total: -1, reserved: 0, allocationRatio: 1 } } });
    const err = await cloud.compute.addHost({ id: 'h-bad', driver: bad }).catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.fields).toEqual(['inventory.VCPU.total']);
    expect(internalsOf(cloud.compute).registry.has('h-bad')).toBe(false);
  });
});
