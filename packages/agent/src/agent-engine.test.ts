import { join } from 'node:path';
import { HostLiveness } from '@nova-lfs/bus-nats';
import { type ComputeEngine, createCompute, type Instance } from '@nova-lfs/core';
import { buildTestInstance, FirstFitScheduler, tinyTestFlavor } from '@nova-lfs/core/testing';
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
import { driverRpc } from './driver-protocol.js';
import { bindHostLiveness, type HostLivenessBinding } from './host-liveness-binding.js';
import { RemoteDriver } from './remote-driver.js';
import { type AgentProcess, startAgentProcess } from './testing/index.js';

const HEARTBEAT_MS = 200;
const DOWN_AFTER_MS = 1200;

/** One agent host of the test: its child process (restartable on the same state dir) and driver. */
interface AgentHost {
  readonly id: string;
  readonly stateDir: string;
  process: AgentProcess;
  driver: RemoteDriver;
}

describe.skipIf(!available)('engine with two agent hosts over NATS (agents are child processes)', () => {
  let bus: ControlPlaneBus;
  let liveness: HostLiveness;
  let binding: HostLivenessBinding;
  let engine: ComputeEngine;
  const hosts: AgentHost[] = [];
  const dir = available ? tempDir() : '';

  const startAgent = (id: string, stateDir: string, extraArgs: string[] = []) =>
    startAgentProcess({ hostId: id, natsUrl, stateDir, heartbeatMs: HEARTBEAT_MS, extraArgs });

  const request = (name: string) => ({
    name,
    projectId: 'p1',
    userId: 'u1',
    flavorId: 'm1.small',
    imageId: 'img',
  });

  beforeAll(async () => {
    bus = await controlPlaneBus();
    liveness = new HostLiveness(bus.nc, { downAfterMs: DOWN_AFTER_MS, checkIntervalMs: 100 });
    await liveness.start();
    for (const name of ['a', 'b']) {
      const id = uniqueHostId(`eng${name}`);
      const stateDir = join(dir, id);
      const process = await startAgent(id, stateDir);
      const driver = await RemoteDriver.connect({
        hostId: id,
        client: bus.client,
        subscriber: bus.subscriber,
        imageServer: bus.imageServer,
        retryWindowMs: 3000,
      });
      hosts.push({ id, stateDir, process, driver });
    }
    engine = await createCompute({
      storage: 'memory',
      scheduler: ({ claims }) => new FirstFitScheduler(claims),
      flavors: [{ id: 'm1.small', vcpus: 1, ramMb: 2048, diskGb: 10 }],
      quota: { defaults: { instances: 100, cores: 400, ramMb: 1_000_000 } },
      hosts: hosts.map((h) => ({ id: h.id, driver: h.driver })),
      engine: { reconcileIntervalMs: 0 },
    });
    await engine.images.import(
      { id: 'img', name: 'img', diskFormat: 'raw' },
      { kind: 'bytes', bytes: new Uint8Array([1, 2, 3]) },
    );
    binding = bindHostLiveness(engine, liveness, { drivers: new Map(hosts.map((h) => [h.id, h.driver])) });
  });

  afterAll(async () => {
    binding?.stop();
    await engine?.close();
    for (const h of hosts) {
      await h.driver.close();
      await h.process.stop();
    }
    liveness?.stop();
    await bus?.close();
  });

  const guestsOf = async (h: AgentHost) =>
    new Map((await h.driver.listInstances()).map((g) => [g.instanceId, g]));

  it('creates, reboots, stops, starts and deletes through the engine; guests live on the agents', async () => {
    const [one] = await engine.create(request('one'));
    const [two] = await engine.create(request('two'));
    for (const i of [one, two] as Instance[]) {
      expect(i.vmState).toBe('active');
      expect(i.powerState).toBe('running');
    }
    const host = hosts.find((h) => h.id === one!.hostId)!;
    expect((await guestsOf(host)).get(one!.id)?.powerState).toBe('running');

    expect((await engine.reboot(one!.id, 'hard')).vmState).toBe('active');
    const stopped = await engine.powerOff(one!.id);
    expect(stopped).toMatchObject({ vmState: 'stopped', powerState: 'shutdown' });
    expect((await guestsOf(host)).get(one!.id)?.powerState).toBe('shutdown');
    const started = await engine.powerOn(one!.id);
    expect(started).toMatchObject({ vmState: 'active', powerState: 'running' });

    await engine.delete(one!.id);
    await engine.delete(two!.id);
    expect((await guestsOf(host)).has(one!.id)).toBe(false);
    const other = hosts.find((h) => h.id === two!.hostId)!;
    expect((await guestsOf(other)).has(two!.id)).toBe(false);
  });

  it('a host whose agent is killed goes down (the scheduler skips it); restarted, it re-attaches to its guests and comes back up', async () => {
    const [a, b] = hosts as [AgentHost, AgentHost];
    // two instances on host a (first fit), powered differently
    const [first] = await engine.create(request('kept-1'));
    const [second] = await engine.create(request('kept-2'));
    expect(first!.hostId).toBe(a.id);
    expect(second!.hostId).toBe(a.id);
    await engine.powerOff(second!.id);

    const killedAt = Date.now();
    await a.process.kill();
    await waitFor(async () => (await engine.hosts.get(a.id))?.up === false, 4 * DOWN_AFTER_MS, 'host a down');
    const detection = Date.now() - killedAt;
    expect(detection).toBeLessThan(2 * DOWN_AFTER_MS + 500);

    // the scheduler skips the down host
    const [elsewhere] = await engine.create(request('while-down'));
    expect(elsewhere).toMatchObject({ vmState: 'active', hostId: b.id });
    // its instances are left as they were by reconciliation (the host is unreachable)
    const whileDown = await engine.reconcile();
    expect(whileDown.unreachableHosts).toContain(a.id);
    expect((await engine.get(first!.id))?.vmState).toBe('active');

    // restart on the same state dir: it re-attaches to both guests
    a.process = await startAgent(a.id, a.stateDir);
    expect([...a.process.ready.recovered].sort()).toEqual([first!.id, second!.id].sort());
    await waitFor(async () => (await engine.hosts.get(a.id))?.up === true, 5000, 'host a up');
    await binding.settled();
    const guests = await guestsOf(a);
    expect(guests.get(first!.id)?.powerState).toBe('running');
    expect(guests.get(second!.id)?.powerState).toBe('shutdown');
    const after = await engine.reconcile();
    expect(after.unreachableHosts).not.toContain(a.id);
    expect(await engine.get(first!.id)).toMatchObject({
      vmState: 'active',
      powerState: 'running',
      fault: null,
    });
    expect(await engine.get(second!.id)).toMatchObject({ vmState: 'stopped', powerState: 'shutdown' });
    // and it serves the engine again
    expect((await engine.reboot(first!.id, 'soft')).vmState).toBe('active');
    for (const i of [first, second, elsewhere]) await engine.delete(i!.id);
  }, 60_000);

  it('a retried operation id runs once, also across a kill -9 and restart of the agent (journal)', async () => {
    const [a] = hosts as [AgentHost];
    const instance = buildTestInstance({ hostId: a.id, imageId: 'img' });
    const image = (await engine.images.get('img'))!;
    const spawn = { instance, flavor: tinyTestFlavor, image, ports: [], volumes: [] };
    await bus.client.call(a.id, driverRpc.spawn, spawn, { operationId: 'op-spawn-1', deadlineMs: 10_000 });
    await bus.client.call(
      a.id,
      driverRpc.powerOff,
      { instance },
      { operationId: 'op-off-1', deadlineMs: 10_000 },
    );
    // while it runs: the retry is answered from memory
    await bus.client.call(a.id, driverRpc.spawn, spawn, { operationId: 'op-spawn-1', deadlineMs: 10_000 });
    expect((await guestsOf(a)).get(instance.id)?.powerState).toBe('shutdown');

    await a.process.kill();
    a.process = await startAgent(a.id, a.stateDir);
    expect(a.process.ready.recovered).toContain(instance.id);
    // after the restart: answered from the journal, the guest is not spawned again (still off)
    await bus.client.call(a.id, driverRpc.spawn, spawn, { operationId: 'op-spawn-1', deadlineMs: 10_000 });
    expect((await guestsOf(a)).get(instance.id)?.powerState).toBe('shutdown');
    // a new operation id does run
    await bus.client.call(
      a.id,
      driverRpc.powerOn,
      { instance },
      { operationId: 'op-on-1', deadlineMs: 10_000 },
    );
    expect((await guestsOf(a)).get(instance.id)?.powerState).toBe('running');
    await a.driver.destroy(instance);
    await waitFor(async () => (await engine.hosts.get(a.id))?.up === true, 5000, 'host a up');
  }, 60_000);
});

describe.skipIf(!available)('RemoteDriver across an agent killed mid-call', () => {
  it('resends a spawn in flight when its agent is killed and restarted: it runs on the new agent, once', async () => {
    const bus = await controlPlaneBus();
    const hostId = uniqueHostId('slow');
    const stateDir = join(tempDir(), hostId);
    const start = () =>
      startAgentProcess({
        hostId,
        natsUrl,
        stateDir,
        heartbeatMs: HEARTBEAT_MS,
        extraArgs: ['--fake-latency-ms', '800'],
      });
    let agent = await start();
    const driver = await RemoteDriver.connect({
      hostId,
      client: bus.client,
      subscriber: bus.subscriber,
      imageServer: bus.imageServer,
    });
    try {
      const instance = buildTestInstance({ hostId });
      const image = {
        id: 'img',
        name: 'img',
        diskFormat: 'raw' as const,
        containerFormat: 'bare' as const,
        sha256: 'a'.repeat(64),
        sizeBytes: 1,
        properties: {},
      };
      const images = {} as never; // the fake agent needs no bytes: never asked
      const spawning = driver.spawn({
        instance,
        flavor: tinyTestFlavor,
        image,
        images,
        ports: [],
        volumes: [],
      });
      await new Promise((r) => setTimeout(r, 300));
      const firstBoot = driver.agentBootId;
      await agent.kill();
      agent = await start();
      await spawning;
      expect(driver.agentBootId).not.toBe(firstBoot);
      expect(driver.agentBootId).toBe(agent.ready.bootId);
      const guests = await driver.listInstances();
      expect(guests.filter((g) => g.instanceId === instance.id)).toEqual([
        expect.objectContaining({ powerState: 'running' }),
      ]);
      await driver.destroy(instance);
    } finally {
      await driver.close();
      await agent.stop();
      await bus.close();
    }
  }, 60_000);
});
