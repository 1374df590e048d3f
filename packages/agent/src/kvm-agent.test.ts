import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type ComputeEngine, createCompute, type Instance, LocalImageService } from '@nova-lfs/core';
import {
  counts,
  findGuestKernel,
  firstUri,
  importCounterImages,
  secondUri,
  twoHostsMissing,
} from '@nova-lfs/driver-kvm/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  available,
  type ControlPlaneBus,
  controlPlaneBus,
  natsUrl,
  tempDir,
  uniqueHostId,
  waitFor,
} from './agent-env.test-helper.js';
import { RemoteDriver } from './remote-driver.js';
import { type AgentProcess, startAgentProcess } from './testing/index.js';

const kernel = await findGuestKernel();
const missing =
  (await twoHostsMissing()) ??
  (kernel === undefined
    ? 'no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)'
    : undefined);
if (missing !== undefined) {
  if (process.env.CI === 'true') throw new Error(`CI=true and ${missing}`);
  console.warn(`skipping KVM agent tests: ${missing}`);
}

/** One KVM agent host: its child process and the control plane's driver for it. */
interface KvmAgentHost {
  readonly id: string;
  readonly process: AgentProcess;
  readonly driver: RemoteDriver;
}

describe.skipIf(!available || missing !== undefined)(
  'KVM agents (child processes) on two real libvirt hosts, driven by one engine over NATS',
  () => {
    let bus: ControlPlaneBus;
    let engine: ComputeEngine;
    let root: string;
    const hosts: KvmAgentHost[] = [];

    beforeAll(async () => {
      root = tempDir('nlfs-kvm-agent-');
      bus = await controlPlaneBus();
      for (const uri of [firstUri, secondUri]) {
        const id = uniqueHostId('kvmagent');
        const process = await startAgentProcess({
          hostId: id,
          driver: 'kvm',
          natsUrl,
          stateDir: join(root, id),
          heartbeatMs: 500,
          extraArgs: ['--kvm-uri', uri],
          readyTimeoutMs: 60_000,
        });
        const driver = await RemoteDriver.connect({
          hostId: id,
          client: bus.client,
          subscriber: bus.subscriber,
          imageServer: bus.imageServer,
          retryWindowMs: 5000,
        });
        hosts.push({ id, process, driver });
      }
      const images = new LocalImageService(join(root, 'images'));
      await importCounterImages(images, root, kernel!);
      engine = await createCompute({
        storage: 'memory',
        images,
        flavors: [{ id: 'mig', vcpus: 1, ramMb: 256 }],
        hosts: hosts.map((h) => ({ id: h.id, driver: h.driver })),
        engine: { reconcileIntervalMs: 0 },
      });
    }, 180_000);

    afterAll(async () => {
      if (engine) {
        for (const i of await engine.list()) await engine.delete(i.id).catch(() => undefined);
        await engine.close();
      }
      for (const h of hosts) {
        await h.driver.close();
        await h.process.stop();
      }
      await bus?.close();
      if (root) rmSync(root, { recursive: true, force: true });
    }, 180_000);

    const last = async (i: Instance) => counts(await engine.consoleOutput(i.id).catch(() => '')).at(-1) ?? -1;
    const guestsOn = async (h: KvmAgentHost) => (await h.driver.listInstances()).map((g) => g.instanceId);

    it('boots a guest through its agent (kernel and initrd sent as artifacts) and live-migrates it to the other agent and back while it keeps counting', async () => {
      const [vm] = await engine.create({
        name: 'over-agents',
        projectId: 'p',
        userId: 'u',
        flavorId: 'mig',
        imageId: 'counter',
      });
      expect(vm).toMatchObject({ vmState: 'active', powerState: 'running' });
      const from = vm!.hostId!;
      await waitFor(async () => (await last(vm!)) >= 3, 90_000, 'the guest to count');

      const progressed: number[] = [];
      const watching = engine.events$.subscribe((e) => {
        if (e.type === 'instance.migration' && e.migration.status === 'running' && e.migration.progress)
          progressed.push(e.migration.progress.dataTotalBytes ?? 0);
      });
      const moved = await engine.liveMigrate(vm!.id).finally(() => watching.unsubscribe());
      expect(moved).toMatchObject({ vmState: 'active', taskState: null });
      expect(moved.hostId).not.toBe(from);
      const dest = hosts.find((h) => h.id === moved.hostId)!;
      const source = hosts.find((h) => h.id === from)!;
      expect(await guestsOn(dest)).toContain(vm!.id);
      expect(await guestsOn(source)).not.toContain(vm!.id);
      const before = await last(moved);
      await waitFor(
        async () => (await last(moved)) >= before + 5,
        30_000,
        'the guest to count on the destination',
      );
      const [record] = await engine.migrations.list({ instanceId: vm!.id });
      expect(record).toMatchObject({
        kind: 'live',
        status: 'completed',
        sourceHostId: from,
        destHostId: dest.id,
      });
      // the agent's progress events (libvirt's job statistics, over NATS) reached the record while it ran
      expect(progressed.length).toBeGreaterThan(0);
      expect(Math.max(...progressed)).toBeGreaterThan(0);
      expect(record!.progress?.downtimeMs).toBeGreaterThan(0);

      const back = await engine.liveMigrate(vm!.id, { host: from });
      expect(back.hostId).toBe(from);
      expect(await guestsOn(source)).toContain(vm!.id);
      const at = await last(back);
      await waitFor(
        async () => (await last(back)) >= at + 5,
        30_000,
        'the guest to count back on the source',
      );

      await engine.delete(vm!.id);
      expect(await guestsOn(source)).not.toContain(vm!.id);
      expect(await guestsOn(dest)).not.toContain(vm!.id);
    }, 300_000);
  },
);
