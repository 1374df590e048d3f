import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@nova-lfs/core';
import { createFakeCloud } from '@nova-lfs/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalNetworkAdapter } from './local-network-adapter.js';

const root = mkdtempSync(join(tmpdir(), 'nlfs-networks-engine-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('LocalNetworkAdapter under the engine (createCompute, FAKE driver)', () => {
  it('binds ports on create, attaches by network and by port, detaches, and releases on delete as Neutron does', async () => {
    const network = new LocalNetworkAdapter({
      stateDir: join(root, 'state'),
      networks: [
        { id: 'net-a', cidr: '10.30.0.0/24' },
        { id: 'net-b', cidr: '10.31.0.0/28' },
      ],
    });
    const cloud = await createFakeCloud({ hosts: 1, core: { network } });
    const driver = cloud.drivers[0]!;
    try {
      const [vm] = await cloud.compute.create(cloud.request({ networks: [{ networkId: 'net-a' }] }));
      const created = await cloud.compute.get(vm!.id);
      expect(created).toMatchObject({ vmState: 'active' });
      expect(created.ports).toEqual([
        {
          portId: expect.any(String),
          networkId: 'net-a',
          macAddress: expect.stringMatching(/^fa:16:3e:/),
          ipAddresses: ['10.30.0.2'],
          binding: { vifType: 'ethernet', tap: expect.stringMatching(/^tap.{11}$/) },
        },
      ]);
      const boot = created.ports![0]!;

      const byNet = await cloud.compute.attachInterface(vm!.id, { networkId: 'net-b' });
      const onB = byNet.ports!.find((p) => p.networkId === 'net-b')!;
      expect(onB.ipAddresses).toEqual(['10.31.0.2']);
      const user = await network.createPort({ networkId: 'net-a', ipAddress: '10.30.0.99' });
      const byPort = await cloud.compute.attachInterface(vm!.id, { portId: user.id });
      expect(byPort.ports?.map((p) => [p.portId, p.ipAddresses?.[0]])).toEqual([
        [boot.portId, '10.30.0.2'],
        [onB.portId, '10.31.0.2'],
        [user.id, '10.30.0.99'],
      ]);
      expect(driver.guest(vm!.id)?.interfaces).toEqual({
        [boot.portId]: boot.macAddress,
        [onB.portId]: onB.macAddress,
        [user.id]: user.macAddress,
      });
      expect((await network.listPorts({ instanceId: vm!.id })).length).toBe(3);

      // a port bound to this server cannot go to another one: refused before anything is plugged
      const [other] = await cloud.compute.create(cloud.request({ name: 'other' }));
      await expect(cloud.compute.attachInterface(other!.id, { portId: user.id })).rejects.toMatchObject({
        code: ErrorCode.Validation,
        details: { issues: [{ path: 'portId', rule: 'in-use' }] },
      });

      // detach the network's port: it is deleted and its address freed
      await cloud.compute.detachInterface(vm!.id, onB.portId);
      await expect(network.getPort(onB.portId)).rejects.toMatchObject({ code: ErrorCode.NotFound });
      expect((await network.listNetworks())[1]?.available).toBe(13);

      // delete: the boot port goes, the user's port is unbound and kept with its address
      await cloud.compute.delete(vm!.id);
      expect(await network.listPorts()).toEqual([{ ...user }]);
      expect((await network.listNetworks()).map((n) => n.available)).toEqual([252, 13]);
      // and can now be attached elsewhere
      const moved = await cloud.compute.attachInterface(other!.id, { portId: user.id });
      expect(moved.ports?.map((p) => p.portId)).toEqual([user.id]);
    } finally {
      await cloud.compute.close();
    }
  });
});
