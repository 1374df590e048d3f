import { describe, expect, it } from 'vitest';
import { createFakeCloud } from '../testing/engine-fixture.js';
import { MemoryNetwork, MemoryVolumes } from '../testing/memory-adapters.js';

/** A two-host FAKE cloud with one instance that has a hot-plugged volume and interface. */
async function instanceWithDevices() {
  const volumes = new MemoryVolumes(['data']);
  const network = new MemoryNetwork(['net-a']);
  const cloud = await createFakeCloud({ hosts: 2, core: { volumes, network } });
  const [vm] = await cloud.compute.create(cloud.request());
  await cloud.compute.attachVolume(vm!.id, { volumeId: 'data', device: 'vdc' });
  const withPort = await cloud.compute.attachInterface(vm!.id, { networkId: 'net-a' });
  const port = withPort.ports![0]!;
  const driverOf = (hostId: string | null) => cloud.drivers[Number(hostId?.slice(-1))]!;
  const plugged = { volumes: { data: 'vdc' }, interfaces: { [port.portId]: port.macAddress } };
  return { ...cloud, vm: withPort, volumes, network, driverOf, plugged };
}

describe('devices across moves', () => {
  it('a cold migration re-creates the guest on the destination with its volume and interface; the revert keeps them', async () => {
    const { compute, vm, driverOf, plugged, volumes } = await instanceWithDevices();
    const moved = await compute.migrate(vm.id);
    expect(moved.hostId).not.toBe(vm.hostId);
    expect(driverOf(moved.hostId).guest(vm.id)).toMatchObject(plugged);
    expect(moved.volumes?.map((v) => v.volumeId)).toEqual(['data']);
    const reverted = await compute.revertResize(vm.id);
    expect(reverted.hostId).toBe(vm.hostId);
    expect(driverOf(reverted.hostId).guest(vm.id)).toMatchObject(plugged);
    expect(volumes.connectedTo(vm.id)).toEqual(['data']);
    await compute.close();
  });

  it('an unshelve and an evacuation boot the guest with its recorded volume and interface', async () => {
    const { compute, vm, driverOf, plugged, network } = await instanceWithDevices();
    await compute.shelve(vm.id);
    expect(driverOf(vm.hostId).hasGuest(vm.id)).toBe(false);
    const back = await compute.unshelve(vm.id);
    expect(driverOf(back.hostId).guest(vm.id)).toMatchObject(plugged);

    await compute.hosts.setStatus(back.hostId!, { up: false });
    await compute.evacuate(back.hostId!);
    const evacuated = await compute.get(vm.id);
    expect(evacuated).toMatchObject({ vmState: 'active' });
    expect(evacuated.hostId).not.toBe(back.hostId);
    expect(driverOf(evacuated.hostId).guest(vm.id)).toMatchObject(plugged);
    expect(network.boundTo(vm.id)).toEqual([vm.ports![0]!.portId]);
    await compute.delete(vm.id);
    expect(network.ports.size).toBe(0);
    await compute.close();
  });
});
