import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type ComputeEngine, createCompute, LocalImageService } from '@nova-lfs/core';
import { makeBusyboxRootfs } from '@nova-lfs/driver-docker/testing';
import { lxcUnavailableReason } from '@nova-lfs/driver-lxc/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  available,
  type ControlPlaneBus,
  controlPlaneBus,
  natsUrl,
  tempDir,
  uniqueHostId,
} from './agent-env.test-helper.js';
import { RemoteDriver } from './remote-driver.js';
import { type AgentProcess, startAgentProcess } from './testing/index.js';

const missing = await lxcUnavailableReason();
if (missing !== undefined) {
  if (process.env.CI === 'true') throw new Error(`CI=true and ${missing}`);
  console.warn(`skipping the LXC agent test: ${missing}`);
}

describe.skipIf(!available || missing !== undefined)(
  'an LXC agent (child process) driven by an engine over NATS',
  () => {
    let bus: ControlPlaneBus;
    let engine: ComputeEngine;
    let agent: AgentProcess;
    let driver: RemoteDriver;
    let root: string;

    beforeAll(async () => {
      root = tempDir('nlfs-lxc-agent-');
      bus = await controlPlaneBus();
      const hostId = uniqueHostId('lxcagent');
      agent = await startAgentProcess({
        hostId,
        driver: 'lxc',
        natsUrl,
        stateDir: join(root, 'agent'),
        heartbeatMs: 500,
        extraArgs: ['--lxc-path', join(root, 'lxc')],
      });
      driver = await RemoteDriver.connect({
        hostId,
        client: bus.client,
        subscriber: bus.subscriber,
        imageServer: bus.imageServer,
      });
      const images = new LocalImageService(join(root, 'images'));
      await makeBusyboxRootfs(join(root, 'busybox.tar'));
      await images.import(
        { id: 'busybox', name: 'busybox', diskFormat: 'tar', properties: { hypervisorType: 'lxc' } },
        { kind: 'file', path: join(root, 'busybox.tar') },
      );
      engine = await createCompute({
        storage: 'memory',
        images,
        flavors: [{ id: 'c1', vcpus: 1, ramMb: 128 }],
        hosts: [{ id: hostId, driver }],
        engine: { reconcileIntervalMs: 0 },
      });
    }, 120_000);

    afterAll(async () => {
      if (engine) {
        for (const i of await engine.list()) await engine.delete(i.id).catch(() => undefined);
        await engine.close();
      }
      await driver?.close();
      await agent?.stop();
      await bus?.close();
      if (root) rmSync(root, { recursive: true, force: true });
    }, 120_000);

    it('creates a system container through the agent (rootfs sent as an artifact), stops, starts, reboots and deletes it', async () => {
      const [vm] = await engine.create({
        name: 'c',
        projectId: 'p',
        userId: 'u',
        flavorId: 'c1',
        imageId: 'busybox',
      });
      expect(vm).toMatchObject({ vmState: 'active', powerState: 'running' });
      const guests = async () =>
        new Map((await driver.listInstances()).map((g) => [g.instanceId, g.powerState]));
      expect((await guests()).get(vm!.id)).toBe('running');
      expect(await engine.powerOff(vm!.id)).toMatchObject({ vmState: 'stopped', powerState: 'shutdown' });
      expect((await guests()).get(vm!.id)).toBe('shutdown');
      expect(await engine.powerOn(vm!.id)).toMatchObject({ vmState: 'active', powerState: 'running' });
      expect(await engine.reboot(vm!.id, 'hard')).toMatchObject({ vmState: 'active', powerState: 'running' });
      await engine.delete(vm!.id);
      expect((await guests()).has(vm!.id)).toBe(false);
    }, 120_000);
  },
);
