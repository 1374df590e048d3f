import { RemoteCallError } from '@nova-lfs/bus-nats';
import { type ComputeEngine, createCompute, DriverError, ErrorCode, type Image } from '@nova-lfs/core';
import { supportsSuspend } from '@nova-lfs/core/ports';
import {
  buildTestInstance,
  type FakeDriverOptions,
  FirstFitScheduler,
  tinyTestFlavor,
} from '@nova-lfs/core/testing';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  available,
  type ControlPlaneBus,
  controlPlaneBus,
  type InProcessAgent,
  startInProcessAgent,
  uniqueHostId,
  waitFor,
} from './agent-env.test-helper.js';
import { driverRpc } from './driver-protocol.js';
import { RemoteDriver } from './remote-driver.js';

const image: Image = {
  id: 'img',
  name: 'img',
  diskFormat: 'raw',
  containerFormat: 'bare',
  sha256: 'a'.repeat(64),
  sizeBytes: 1,
  properties: {},
};
const noImages = {} as never; // fake agents without --fake-acquire-images are never asked for bytes

describe.skipIf(!available)('RemoteDriver ↔ AgentService (in-process agents, real nats-server)', () => {
  let bus: ControlPlaneBus;
  const started: InProcessAgent[] = [];
  const engines: ComputeEngine[] = [];

  const startAgent = async (fake: FakeDriverOptions = {}): Promise<InProcessAgent> => {
    const a = await startInProcessAgent(bus, { fake });
    started.push(a);
    return a;
  };

  const engineOver = async (agents: InProcessAgent[], engine: Record<string, unknown> = {}) => {
    const e = await createCompute({
      storage: 'memory',
      scheduler: ({ claims }) => new FirstFitScheduler(claims),
      flavors: [{ id: 'm1', vcpus: 1, ramMb: 512, diskGb: 1 }],
      quota: { defaults: { instances: 100, cores: 100, ramMb: 100_000 } },
      hosts: agents.map((a) => ({ id: a.hostId, driver: a.driver })),
      engine: { reconcileIntervalMs: 0, ...engine },
    });
    await e.images.import(
      { id: 'img', name: 'img', diskFormat: 'raw' },
      { kind: 'bytes', bytes: new Uint8Array([1]) },
    );
    engines.push(e);
    return e;
  };
  const request = { name: 'vm', projectId: 'p', userId: 'u', flavorId: 'm1', imageId: 'img' };

  beforeAll(async () => {
    bus = await controlPlaneBus();
  });
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    for (const a of started.splice(0)) await a.stop();
  });
  afterAll(async () => {
    await bus?.close();
  });

  it('a remote DriverError arrives as a core DriverError with its retryable and reschedule', async () => {
    const a = await startAgent();
    a.fake.failNext('spawn', { times: 1, retryable: false, reschedule: false, message: 'no such format' });
    const instance = buildTestInstance({ hostId: a.hostId });
    const err = await a.driver
      .spawn({ instance, flavor: tinyTestFlavor, image, images: noImages, ports: [], volumes: [] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect(err).toMatchObject({
      code: ErrorCode.Driver,
      retryable: false,
      reschedule: false,
      details: { driver: 'fake', operation: 'spawn', hostId: a.hostId, instanceId: instance.id },
    });
    expect((err as Error).cause).toBeInstanceOf(RemoteCallError);
  });

  it('the engine reschedules a build whose remote failure allows it, and stops one that does not', async () => {
    const first = await startAgent();
    const second = await startAgent();
    const engine = await engineOver([first, second]);
    first.fake.failNext('spawn', { times: 1, message: 'busy' });
    const [moved] = await engine.create(request);
    expect(moved).toMatchObject({ vmState: 'active', hostId: second.hostId });

    first.fake.failNext('spawn', { times: 1, reschedule: false, retryable: false, message: 'cannot run' });
    const [stopped] = await engine.create({ ...request, name: 'vm2' });
    expect(stopped?.vmState).toBe('error');
    expect(stopped?.fault?.code).toBe(ErrorCode.Driver);
    expect(second.fake.calls.spawn).toBe(1);
  });

  it('the engine signal aborting a remote spawn rejects it with its reason and cancels it on the agent', async () => {
    const a = await startAgent();
    a.fake.hangNext('spawn', 'before');
    const instance = buildTestInstance({ hostId: a.hostId });
    const controller = new AbortController();
    const spawning = a.driver.spawn({
      instance,
      flavor: tinyTestFlavor,
      image,
      images: noImages,
      ports: [],
      volumes: [],
      signal: controller.signal,
    });
    await waitFor(() => a.agent.busyInstances === 1, 5000, 'spawn running on the agent');
    const reason = new Error('deadline');
    controller.abort(reason);
    await expect(spawning).rejects.toBe(reason);
    // driver.cancel reached the agent: its driver call ended without any destroy
    await waitFor(() => a.agent.busyInstances === 0, 5000, 'agent call cancelled');
    expect(a.fake.hasGuest(instance.id)).toBe(false);
  });

  it('an engine spawn deadline ends the build in ERROR with the deadline fault and frees the agent', async () => {
    const a = await startAgent();
    const engine = await engineOver([a], { timeouts: { spawn: 400 }, maxBuildAttempts: 1 });
    a.fake.hangNext('spawn', 'before');
    const [vm] = await engine.create(request);
    expect(vm?.vmState).toBe('error');
    expect(vm?.fault?.code).toBe(ErrorCode.DeadlineExceeded);
    await waitFor(() => a.agent.busyInstances === 0, 5000, 'agent call ended');
    expect(a.fake.hasGuest(vm!.id)).toBe(false);
  });

  it('reports the agent driver capabilities: an operation the driver lacks is off and refused remotely', async () => {
    const a = await startAgent({ capabilities: { suspend: false } });
    expect(a.driver.capabilities.suspend).toBe(false);
    expect(a.driver.capabilities.pause).toBe(true);
    expect(Object.isFrozen(a.driver.capabilities)).toBe(true);
    expect(supportsSuspend(a.driver)).toBe(false);
    const instance = buildTestInstance({ hostId: a.hostId });
    const err = await bus.client.call(a.hostId, driverRpc.suspend, { instance }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.CapabilityUnsupported, details: { capability: 'suspend' } });
  });

  it('power events of the agent driver reach the engine: a guest stopping by itself is synced', async () => {
    const a = await startAgent();
    const engine = await engineOver([a]);
    const [vm] = await engine.create(request);
    const event = firstValueFrom(a.driver.events$.pipe(filter((e) => e.instanceId === vm!.id)));
    a.fake.crash(vm!.id, 'shutdown');
    expect(await event).toMatchObject({ instanceId: vm!.id, powerState: 'shutdown' });
    await waitFor(async () => (await engine.get(vm!.id))?.powerState === 'shutdown', 5000, 'power synced');
  });

  it('a host reported down fails the calls waiting for its agent at once, retryable', async () => {
    const a = await startAgent();
    a.fake.hangNext('spawn', 'before');
    const instance = buildTestInstance({ hostId: a.hostId });
    const spawning = a.driver
      .spawn({ instance, flavor: tinyTestFlavor, image, images: noImages, ports: [], volumes: [] })
      .catch((e: unknown) => e);
    await waitFor(() => a.driver.pendingCalls === 1, 5000, 'call in flight');
    a.driver.hostDown();
    expect(await spawning).toMatchObject({ code: ErrorCode.Driver, retryable: true, reschedule: true });
    expect(a.driver.isDown).toBe(true);
    a.driver.hostUp();
    await a.driver.destroy(instance);
  });

  it('an unreachable host fails a call with a retryable DriverError after its retry window', async () => {
    const a = await startAgent();
    const driver = new RemoteDriver(
      { hostId: uniqueHostId('absent'), client: bus.client, subscriber: bus.subscriber, retryWindowMs: 300 },
      { ...a.agent.describe(), hostId: 'absent' },
    );
    const startedAt = Date.now();
    const err = await driver.listInstances().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.Driver, retryable: true, reschedule: true });
    expect(Date.now() - startedAt).toBeLessThan(3000);
    await driver.close();
  });
});
