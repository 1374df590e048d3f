import { join } from 'node:path';
import { type ComputeEngine, createCompute, LocalImageService } from '@nova-lfs/core';
import { FirstFitScheduler } from '@nova-lfs/core/testing';
import { dockerAvailable, makeBusyboxRootfs, startDockerCommand } from '@nova-lfs/driver-docker/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ControlPlaneBus,
  controlPlaneBus,
  available as natsUp,
  natsUrl,
  tempDir,
  uniqueHostId,
  waitFor,
} from './agent-env.test-helper.js';
import { RemoteDriver } from './remote-driver.js';
import { type AgentProcess, startAgentProcess } from './testing/index.js';

const dockerUp = await dockerAvailable();
if (!dockerUp) {
  const reason = `dockerd is not reachable on /var/run/docker.sock; start it with: ${startDockerCommand}`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping the Docker agent test: ${reason}`);
}

// One agent with the real Docker driver (child process, real dockerd), driven by an engine through
// a RemoteDriver. The agent reads image bytes from the engine's image cache directory (same
// machine) and stages snapshots that the engine imports.
describe.skipIf(!natsUp || !dockerUp)('engine with a Docker agent host over NATS', () => {
  let bus: ControlPlaneBus;
  let agent: AgentProcess;
  let driver: RemoteDriver;
  let engine: ComputeEngine;
  const hostId = uniqueHostId('docker');
  const dir = tempDir();

  beforeAll(async () => {
    agent = await startAgentProcess({
      hostId,
      driver: 'docker',
      natsUrl,
      stateDir: join(dir, 'agent'),
      heartbeatMs: 500,
    });
    bus = await controlPlaneBus();
    driver = await RemoteDriver.connect({
      hostId,
      client: bus.client,
      subscriber: bus.subscriber,
      imageServer: bus.imageServer,
    });
    const tar = join(dir, 'busybox.tar');
    await makeBusyboxRootfs(tar);
    const images = new LocalImageService(join(dir, 'images'));
    engine = await createCompute({
      storage: 'memory',
      images,
      scheduler: ({ claims }) => new FirstFitScheduler(claims),
      flavors: [{ id: 'c1', vcpus: 1, ramMb: 64, diskGb: 0 }],
      quota: { defaults: { instances: 10, cores: 10, ramMb: 10_000 } },
      hosts: [{ id: hostId, driver }],
      engine: { reconcileIntervalMs: 0 },
    });
    await images.import(
      {
        id: 'busybox',
        name: 'busybox',
        diskFormat: 'tar',
        containerFormat: 'docker',
        properties: { hypervisorType: 'docker' },
      },
      { kind: 'file', path: tar },
    );
  }, 120_000);

  afterAll(async () => {
    for (const g of (await driver?.listInstances().catch(() => [])) ?? []) {
      const i = await engine.get(g.instanceId);
      if (i) await engine.delete(i.id).catch(() => undefined);
    }
    await engine?.close();
    await driver?.close();
    await agent?.stop();
    await bus?.close();
  }, 60_000);

  it('reports the Docker driver and its capabilities through the agent', async () => {
    expect(driver.kind).toBe('docker');
    expect(driver.capabilities).toMatchObject({
      powerControl: true,
      pause: true,
      snapshot: true,
      suspend: false,
    });
    expect((await engine.hosts.get(hostId))?.hypervisorType).toBe('docker');
  });

  it('creates a container, reads its console, reboots, stops, starts, survives a kill -9 of its agent, snapshots it, boots the snapshot and deletes both', async () => {
    const base = { projectId: 'p1', userId: 'u1', flavorId: 'c1' };
    const [vm] = await engine.create({ ...base, name: 'web', imageId: 'busybox' });
    expect(vm).toMatchObject({ vmState: 'active', powerState: 'running', hostId });
    await waitFor(async () => (await engine.consoleOutput(vm!.id)).length > 0, 10_000, 'console output');
    expect((await driver.listInstances()).map((g) => g.instanceId)).toContain(vm!.id);

    expect((await engine.reboot(vm!.id, 'hard')).vmState).toBe('active');
    expect(await engine.powerOff(vm!.id)).toMatchObject({ vmState: 'stopped', powerState: 'shutdown' });
    expect(await engine.powerOn(vm!.id)).toMatchObject({ vmState: 'active', powerState: 'running' });

    // kill -9 the agent: Docker keeps the container; the restarted agent re-attaches to it
    await agent.kill();
    agent = await startAgentProcess({
      hostId,
      driver: 'docker',
      natsUrl,
      stateDir: join(dir, 'agent'),
      heartbeatMs: 500,
    });
    expect(agent.ready.recovered).toContain(vm!.id);
    expect((await driver.listInstances()).find((g) => g.instanceId === vm!.id)?.powerState).toBe('running');
    const report = await engine.reconcile();
    expect(report.unreachableHosts).toEqual([]);
    expect(await engine.get(vm!.id)).toMatchObject({ vmState: 'active', powerState: 'running', fault: null });

    const snap = await engine.snapshot(vm!.id, 'web-snap');
    expect(snap).toMatchObject({ diskFormat: 'tar', properties: { sourceInstance: vm!.id } });
    expect((await engine.images.get(snap.id))?.sha256).toBe(snap.sha256);
    const [fromSnap] = await engine.create({ ...base, name: 'web-2', imageId: snap.id });
    expect(fromSnap).toMatchObject({ vmState: 'active', powerState: 'running' });

    await engine.delete(vm!.id);
    await engine.delete(fromSnap!.id);
    const left = (await driver.listInstances()).map((g) => g.instanceId);
    expect(left).not.toContain(vm!.id);
    expect(left).not.toContain(fromSnap!.id);
  }, 120_000);
});
