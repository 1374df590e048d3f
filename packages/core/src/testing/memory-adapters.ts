import type { ComputeOptions } from '../compose/create-compute.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { Instance } from '../model/instance.js';
import type { DriverCapabilities } from '../ports/driver.js';
import type { NetworkAdapter, NetworkRequest, PortBinding } from '../ports/network.js';
import type { BlockDevice, VolumeAdapter, VolumeRequest } from '../ports/volume.js';
import { createFakeCloud } from './engine-fixture.js';

// Backends in memory for the engine's own tests of the volume and interface flows (the real
// adapters, `@nova-lfs/volume-local` and `@nova-lfs/network-local`, depend on core).

/**
 * A volume backend in memory that behaves as a real one does: unknown volumes are refused, a volume
 * is connected to one instance at a time, and both calls are idempotent.
 */
export class MemoryVolumes implements VolumeAdapter {
  /** Volume id to the instance it is connected to (`null`: free). */
  readonly attachedTo = new Map<string, string | null>();
  readonly log: string[] = [];
  /** Every volume id a disconnect named, in call order (`*` for one of all the instance's volumes). */
  readonly released: string[] = [];
  constructor(ids: readonly string[]) {
    for (const id of ids) this.attachedTo.set(id, null);
  }
  async connect(
    instance: Instance,
    hostId: string,
    requests: readonly VolumeRequest[],
  ): Promise<BlockDevice[]> {
    for (const r of requests) {
      if (!this.attachedTo.has(r.volumeId)) throw new NotFoundError('volume', r.volumeId, 'volumeId');
      const on = this.attachedTo.get(r.volumeId);
      if (on && on !== instance.id)
        throw new ValidationError([{ path: 'volumeId', rule: 'in-use', message: `attached to ${on}` }]);
    }
    for (const r of requests) this.attachedTo.set(r.volumeId, instance.id);
    this.log.push(`connect ${hostId} ${requests.map((r) => r.volumeId).join(',')}`);
    return requests.map((r) => ({
      volumeId: r.volumeId,
      ...(r.device ? { device: r.device } : {}),
      connection: { type: 'file', path: `/volumes/${r.volumeId}` },
    }));
  }
  async disconnect(instance: Instance, hostId: string, volumeIds?: readonly string[]): Promise<void> {
    for (const [id, on] of this.attachedTo)
      if (on === instance.id && (!volumeIds || volumeIds.includes(id))) this.attachedTo.set(id, null);
    this.log.push(`disconnect ${hostId} ${volumeIds?.join(',') ?? '*'}`);
    this.released.push(...(volumeIds ?? ['*']));
  }
  connectedTo(instanceId: string): string[] {
    return [...this.attachedTo].filter(([, on]) => on === instanceId).map(([id]) => id);
  }
}

/**
 * A network backend in memory that behaves as Neutron does for Nova: a port made for a network
 * goes on release, a port made beforehand is unbound and kept, a port is bound to one instance at
 * a time, unknown networks and ports are refused, and both calls are idempotent.
 */
export class MemoryNetwork implements NetworkAdapter {
  readonly ports = new Map<
    string,
    { networkId: string; mac: string; boundTo: string | null; made: boolean }
  >();
  /** Every port id a deallocate named, in call order (`*` for one of all the instance's ports). */
  readonly released: string[] = [];
  private next = 0;
  constructor(private readonly networks: readonly string[]) {}
  /** A port made beforehand (`openstack port create`). */
  precreate(id: string, networkId: string): void {
    this.ports.set(id, { networkId, mac: this.mac(), boundTo: null, made: false });
  }
  async allocate(instance: Instance, requests: readonly NetworkRequest[]): Promise<PortBinding[]> {
    for (const r of requests) {
      if (r.portId) {
        const p = this.ports.get(r.portId);
        if (!p) throw new NotFoundError('port', r.portId, 'portId');
        if (p.boundTo && p.boundTo !== instance.id)
          throw new ValidationError([{ path: 'portId', rule: 'in-use', message: `bound to ${p.boundTo}` }]);
      } else if (!this.networks.includes(r.networkId ?? this.networks[0]!))
        throw new NotFoundError('network', r.networkId ?? '', 'networkId');
    }
    return requests.map((r) => {
      const id = r.portId ?? `port-${++this.next}`;
      const p = this.ports.get(id) ?? {
        networkId: r.networkId ?? this.networks[0]!,
        mac: this.mac(),
        boundTo: null,
        made: true,
      };
      this.ports.set(id, { ...p, boundTo: instance.id });
      return { portId: id, networkId: p.networkId, macAddress: p.mac, binding: { tap: `tap${id}` } };
    });
  }
  async deallocate(instance: Instance, portIds?: readonly string[]): Promise<void> {
    this.released.push(...(portIds ?? ['*']));
    for (const [id, p] of this.ports) {
      if (p.boundTo !== instance.id || (portIds && !portIds.includes(id))) continue;
      if (p.made) this.ports.delete(id);
      else this.ports.set(id, { ...p, boundTo: null });
    }
  }
  boundTo(instanceId: string): string[] {
    return [...this.ports].filter(([, p]) => p.boundTo === instanceId).map(([id]) => id);
  }
  private mac(): string {
    return `fa:16:3e:00:00:${(++this.next).toString(16).padStart(2, '0')}`;
  }
}

/**
 * A one-host FAKE cloud over these adapters with one running instance (`vm`) and its host's
 * driver; `capabilities` override the FAKE's (e.g. hot-plug off).
 */
export async function cloudWithInstance(
  core: Pick<Partial<ComputeOptions>, 'volumes' | 'network' | 'engine'>,
  capabilities?: Partial<DriverCapabilities>,
) {
  const cloud = await createFakeCloud({
    hosts: 1,
    core,
    ...(capabilities ? { driver: { capabilities } } : {}),
  });
  const [vm] = await cloud.compute.create(cloud.request());
  return { ...cloud, vm: vm!, driver: cloud.drivers[0]! };
}
