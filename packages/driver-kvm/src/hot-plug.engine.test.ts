import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type ComputeEngine, createCompute, type Instance, type LocalImageService } from '@nova-lfs/core';
import { LocalNetworkAdapter } from '@nova-lfs/network-local';
import { LocalVolumeAdapter } from '@nova-lfs/volume-local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, probeImages, tagRaw, testRoot, waitConsole } from './kvm-env.test-helper.js';
import { PROBE } from './testing/index.js';

const HOST = 'kvm-attach';

describe.skipIf(!available)(
  'volume and interface attach and detach through the engine on a real KVM host',
  () => {
    let root: string;
    let images: LocalImageService;
    let driver: KvmDriver;
    let volumes: LocalVolumeAdapter;
    let network: LocalNetworkAdapter;
    let compute: ComputeEngine;

    beforeAll(async () => {
      root = testRoot();
      ({ images } = await guestImages(root));
      await probeImages(images, root);
      driver = new KvmDriver({ hostId: HOST, stateDir: join(root, 'state') });
      volumes = new LocalVolumeAdapter(join(root, 'volumes'));
      network = new LocalNetworkAdapter({
        stateDir: join(root, 'network'),
        networks: [
          { id: 'net-a', cidr: '10.250.1.0/24' },
          { id: 'net-b', cidr: '10.250.2.0/28' },
        ],
      });
      compute = await createCompute({
        storage: 'memory',
        images,
        volumes,
        network,
        flavors: [{ id: 'vm.attach', vcpus: 1, ramMb: 192 }],
        hosts: [{ id: HOST, driver }],
      });
    }, 120_000);

    afterAll(async () => {
      if (compute) {
        for (const i of await compute.list()) await compute.delete(i.id).catch(() => undefined);
        await compute.close();
      }
      if (root) rmSync(root, { recursive: true, force: true });
    }, 120_000);

    const read = (i: Instance) => () => driver.getConsoleOutput(i);

    it('hot-plugs a volume the guest then reads, unplugs it on detach, and frees it; a delete disconnects what stays attached', async () => {
      const [vm] = await compute.create({
        name: 'attach',
        projectId: 'p',
        userId: 'u',
        flavorId: 'vm.attach',
        imageId: 'probe',
      });
      expect(vm).toMatchObject({ vmState: 'active', hostId: HOST });
      let { end } = await waitConsole(read(vm!), new RegExp(`${PROBE.block} \\[vda \\]`));

      const data = await volumes.create({ id: 'engine-data', sizeMiB: 16 });
      await tagRaw(data.path, 'NLFSVOL-engine-data');
      const attached = await compute.attachVolume(vm!.id, { volumeId: 'engine-data' });
      expect(attached).toMatchObject({ vmState: 'active', taskState: null, fault: null });
      expect(attached.volumes).toEqual([
        {
          volumeId: 'engine-data',
          device: 'vdb',
          connection: { type: 'file', path: data.path, format: 'raw' },
        },
      ]);
      expect((await volumes.get('engine-data')).attachedTo).toBe(vm!.id);
      ({ end } = await waitConsole(read(vm!), new RegExp(`${PROBE.block} \\[vda vdb \\]`), end));
      ({ end } = await waitConsole(read(vm!), new RegExp(`${PROBE.disk} vdb NLFSVOL-engine-data`), end));

      // a volume the adapter does not know: refused, nothing plugged in, the guest unchanged
      await expect(compute.attachVolume(vm!.id, { volumeId: 'missing' })).rejects.toMatchObject({
        code: 'NLFS_NOT_FOUND',
      });
      expect((await compute.get(vm!.id)).volumes?.map((v) => v.volumeId)).toEqual(['engine-data']);

      const detached = await compute.detachVolume(vm!.id, 'engine-data');
      expect(detached.volumes).toEqual([]);
      ({ end } = await waitConsole(read(vm!), new RegExp(`${PROBE.block} \\[vda \\]`), end));
      expect((await volumes.get('engine-data')).attachedTo).toBeUndefined();
      expect(await driver.getPowerState(vm!)).toBe('running');

      // attached again and left attached: the delete disconnects it, the volume can then go
      await compute.attachVolume(vm!.id, { volumeId: 'engine-data' });
      await waitConsole(read(vm!), new RegExp(`${PROBE.block} \\[vda vdb \\]`), end);
      await compute.delete(vm!.id);
      expect((await volumes.get('engine-data')).attachedTo).toBeUndefined();
      await volumes.delete('engine-data');
      expect(await compute.list()).toEqual([]);
    }, 300_000);

    it('boots with a port on one network, hot-plugs one on another and a port made beforehand (the guest sees each MAC), unplugs them, and releases every port on delete', async () => {
      const [vm] = await compute.create({
        name: 'nics',
        projectId: 'p',
        userId: 'u',
        flavorId: 'vm.attach',
        imageId: 'probe',
        networks: [{ networkId: 'net-a' }],
      });
      expect(vm).toMatchObject({ vmState: 'active', hostId: HOST });
      const [boot] = vm!.ports!;
      expect(boot).toMatchObject({ networkId: 'net-a', ipAddresses: ['10.250.1.2'] });
      let { end } = await waitConsole(read(vm!), new RegExp(`${PROBE.net} \\[${boot!.macAddress} \\]`));

      const onB = await compute.attachInterface(vm!.id, { networkId: 'net-b' });
      const hot = onB.ports!.find((p) => p.networkId === 'net-b')!;
      expect(onB).toMatchObject({ vmState: 'active', taskState: null, fault: null });
      ({ end } = await waitConsole(
        read(vm!),
        new RegExp(`${PROBE.net} \\[${boot!.macAddress} ${hot.macAddress} \\]`),
        end,
      ));
      const made = await network.createPort({ networkId: 'net-a' });
      await compute.attachInterface(vm!.id, { portId: made.id });
      ({ end } = await waitConsole(
        read(vm!),
        new RegExp(`${PROBE.net} \\[${boot!.macAddress} ${hot.macAddress} ${made.macAddress} \\]`),
        end,
      ));

      // a port bound elsewhere or on an unknown network: refused, nothing plugged in
      await expect(compute.attachInterface(vm!.id, { networkId: 'net-x' })).rejects.toMatchObject({
        code: 'NLFS_NOT_FOUND',
      });
      expect((await compute.get(vm!.id)).ports).toHaveLength(3);

      const detached = await compute.detachInterface(vm!.id, hot.portId);
      expect(detached.ports?.map((p) => p.portId)).toEqual([boot!.portId, made.id]);
      ({ end } = await waitConsole(
        read(vm!),
        new RegExp(`${PROBE.net} \\[${boot!.macAddress} ${made.macAddress} \\]`),
        end,
      ));
      await expect(network.getPort(hot.portId)).rejects.toMatchObject({ code: 'NLFS_NOT_FOUND' });
      await compute.detachInterface(vm!.id, made.id);
      await waitConsole(read(vm!), new RegExp(`${PROBE.net} \\[${boot!.macAddress} \\]`), end);
      // the port made beforehand is kept, unbound
      expect(await network.getPort(made.id)).not.toHaveProperty('instanceId');
      expect(await driver.getPowerState(vm!)).toBe('running');

      await compute.delete(vm!.id);
      expect((await network.listPorts({ networkId: 'net-a' })).map((p) => p.id)).toEqual([made.id]);
      await network.deletePort(made.id);
      expect(await network.listPorts()).toEqual([]);
    }, 300_000);
  },
);
