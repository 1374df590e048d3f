import { type ComputeEngine, createCompute, type InstanceEvent, type MigrationRecord } from '@nova-lfs/core';
import {
  supportsColdMigration,
  supportsInterfaceAttach,
  supportsLiveMigration,
  supportsRescue,
  supportsVolumeAttach,
} from '@nova-lfs/core/ports';
import { buildTestInstance, FirstFitScheduler, tinyTestFlavor } from '@nova-lfs/core/testing';
import { filter, firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  available,
  type ControlPlaneBus,
  controlPlaneBus,
  type InProcessAgent,
  RecordingLogger,
  startInProcessAgent,
} from './agent-env.test-helper.js';
import { moveRpc } from './move-protocol.js';

const flavors = [
  { id: 'small', vcpus: 1, ramMb: 512, diskGb: 1 },
  { id: 'large', vcpus: 2, ramMb: 1024, diskGb: 1 },
];

describe.skipIf(!available)(
  'move ports over the agent protocol (in-process agents, real nats-server)',
  () => {
    let bus: ControlPlaneBus;
    let engine: ComputeEngine;
    const agents: InProcessAgent[] = [];
    const logger = new RecordingLogger();

    beforeAll(async () => {
      bus = await controlPlaneBus();
      for (let n = 0; n < 2; n++) {
        // never converges by itself: a migration ends by force-complete or abort
        const fake = {
          vcpus: 8,
          ramMb: 8192,
          liveMigration: { tickMs: 5, convergeAfterMs: 'never' as const },
        };
        agents.push(await startInProcessAgent(bus, { fake, logger, prefix: `move${n}` }));
      }
      engine = await createCompute({
        storage: 'memory',
        scheduler: ({ claims }) => new FirstFitScheduler(claims),
        flavors,
        quota: { defaults: { instances: 100, cores: 400, ramMb: 1_000_000 } },
        hosts: agents.map((a) => ({ id: a.hostId, driver: a.driver })),
        engine: { reconcileIntervalMs: 0, liveMigrationCompletionTimeoutMs: 0 },
      });
      await engine.images.import(
        { id: 'img', name: 'img', diskFormat: 'raw' },
        { kind: 'bytes', bytes: new Uint8Array([1, 2, 3]) },
      );
    });

    afterAll(async () => {
      await engine?.close();
      for (const a of agents) await a.stop();
      await bus?.close();
    });

    const create = async (name: string) => {
      const [vm] = await engine.create({
        name,
        projectId: 'p1',
        userId: 'u1',
        flavorId: 'small',
        imageId: 'img',
      });
      expect(vm).toMatchObject({ vmState: 'active', powerState: 'running' });
      return vm!;
    };
    const agentOf = (hostId: string | null) => agents.find((a) => a.hostId === hostId)!;
    const otherThan = (hostId: string | null) => agents.find((a) => a.hostId !== hostId)!;
    const migrationEvent = (id: string, pick: (m: MigrationRecord) => boolean) =>
      firstValueFrom(
        engine.events$.pipe(
          filter(
            (e): e is Extract<InstanceEvent, { type: 'instance.migration' }> =>
              e.type === 'instance.migration' && e.instanceId === id && pick(e.migration),
          ),
        ),
      );

    it('the remote driver offers the move ports of a revision-2 agent whose driver has them', () => {
      const d = agents[0]!.driver;
      expect(supportsColdMigration(d)).toBe(true);
      expect(supportsLiveMigration(d)).toBe(true);
      expect(supportsRescue(d)).toBe(true);
      expect(supportsVolumeAttach(agents[0]!.fake)).toBe(true);
      expect(supportsVolumeAttach(d)).toBe(true);
      expect(supportsInterfaceAttach(d)).toBe(true);
    });

    it("hot-plugs a volume and an interface into the agent's guest and unplugs them, over the bus", async () => {
      const vm = await create('plug-me');
      const host = agentOf(vm.hostId);
      const port = {
        portId: 'port-1',
        networkId: 'net-1',
        macAddress: 'fa:16:3e:00:00:01',
        ipAddresses: ['10.0.0.5'],
        binding: { tap: 'tapport-1' },
      };
      const device = { volumeId: 'vol-1', connection: { type: 'file', path: '/v/vol-1', format: 'raw' } };
      await host.driver.attachInterface(vm, port);
      await host.driver.attachVolume(vm, device);
      expect(host.fake.guest(vm.id)).toMatchObject({
        interfaces: { 'port-1': 'fa:16:3e:00:00:01' },
        volumes: { 'vol-1': 'vdb' },
      });
      await host.driver.detachInterface(vm, port);
      await host.driver.detachVolume(vm, device);
      expect(host.fake.guest(vm.id)).toMatchObject({ interfaces: {}, volumes: {} });
      // a malformed port is refused on the wire, naming the field; the guest is unchanged
      await expect(host.driver.attachInterface(vm, { ...port, portId: '' } as never)).rejects.toMatchObject({
        message: expect.stringMatching(/portId/),
      });
      expect(host.fake.guest(vm.id)?.interfaces).toEqual({});
      await engine.delete(vm.id);
    });

    it('resizes across agents and confirms: the new guest has the new flavor, the kept copy goes on confirm', async () => {
      const vm = await create('resize-me');
      const source = agentOf(vm.hostId);
      const resized = await engine.resize(vm.id, 'large');
      expect(resized).toMatchObject({ vmState: 'resized', flavor: { id: 'large' } });
      const dest = agentOf(resized.hostId);
      expect(dest.fake.guest(vm.id)).toMatchObject({ powerState: 'running', vcpus: 2, ramMb: 1024 });
      if (dest !== source) expect(source.fake.hasGuest(vm.id)).toBe(false);
      const confirmed = await engine.confirmResize(vm.id);
      expect(confirmed).toMatchObject({ vmState: 'active', flavor: { id: 'large' }, hostId: dest.hostId });
      const listed = await source.driver.listInstances();
      if (dest !== source) expect(listed.some((g) => g.instanceId === vm.id)).toBe(false);
      await engine.delete(vm.id);
      expect(dest.fake.hasGuest(vm.id)).toBe(false);
    });

    it('cold-migrates to the other agent and reverts: the guest comes back on the source with its flavor', async () => {
      const vm = await create('migrate-me');
      const source = agentOf(vm.hostId);
      const dest = otherThan(vm.hostId);
      const moved = await engine.migrate(vm.id, { host: dest.hostId });
      expect(moved).toMatchObject({ vmState: 'resized', hostId: dest.hostId });
      expect(dest.fake.guest(vm.id)?.powerState).toBe('running');
      const reverted = await engine.revertResize(vm.id);
      expect(reverted).toMatchObject({ vmState: 'active', hostId: source.hostId, flavor: { id: 'small' } });
      expect(source.fake.guest(vm.id)).toMatchObject({ powerState: 'running', vcpus: 1 });
      expect(dest.fake.hasGuest(vm.id)).toBe(false);
      const [record] = await engine.migrations.list({ instanceId: vm.id });
      expect(record).toMatchObject({
        status: 'reverted',
        sourceHostId: source.hostId,
        destHostId: dest.hostId,
      });
      await engine.delete(vm.id);
    });

    it('rescues and unrescues on the agent', async () => {
      const vm = await create('rescue-me');
      const host = agentOf(vm.hostId);
      expect(await engine.rescue(vm.id)).toMatchObject({ vmState: 'rescued' });
      expect(host.fake.guest(vm.id)?.rescueImageId).toBe('img');
      expect(await engine.unrescue(vm.id)).toMatchObject({ vmState: 'active' });
      expect(host.fake.guest(vm.id)?.rescueImageId).toBeUndefined();
      await engine.delete(vm.id);
    });

    it('live-migrates with progress from the agent; force-complete reaches the agent while the migration holds its lane', async () => {
      const vm = await create('live-me');
      const source = agentOf(vm.hostId);
      const dest = otherThan(vm.hostId);
      const progressed = migrationEvent(vm.id, (m) => m.status === 'running' && m.progress !== null);
      const moving = engine.liveMigrate(vm.id, { host: dest.hostId });
      const { progress } = (await progressed).migration;
      expect(progress).toMatchObject({ phase: 'precopy' });
      expect(progress!.dataTotalBytes).toBe(512 * 1024 * 1024);
      expect(source.fake.runningMigrations).toEqual([vm.id]);
      await engine.forceCompleteMigration(vm.id);
      const moved = await moving;
      expect(moved).toMatchObject({ vmState: 'active', taskState: null, hostId: dest.hostId });
      expect(dest.fake.guest(vm.id)?.powerState).toBe('running');
      expect(source.fake.hasGuest(vm.id)).toBe(false);
      const [record] = await engine.migrations.list({ instanceId: vm.id, kind: 'live' });
      expect(record).toMatchObject({ status: 'completed', destHostId: dest.hostId });
      await engine.delete(vm.id);
    });

    it('an aborted live migration leaves the guest running on the source agent', async () => {
      const vm = await create('abort-me');
      const source = agentOf(vm.hostId);
      const dest = otherThan(vm.hostId);
      const running = migrationEvent(vm.id, (m) => m.status === 'running');
      const moving = engine.liveMigrate(vm.id, { host: dest.hostId });
      await running;
      await engine.abortMigration(vm.id);
      await expect(moving).rejects.toThrow();
      const after = await engine.get(vm.id);
      expect(after).toMatchObject({ vmState: 'active', taskState: null, hostId: source.hostId });
      expect(source.fake.guest(vm.id)?.powerState).toBe('running');
      expect(dest.fake.hasGuest(vm.id)).toBe(false);
      expect((await engine.migrations.list({ instanceId: vm.id }))[0]?.status).toBe('cancelled');
      await engine.delete(vm.id);
    });

    it('a resent migrateDisksAndPowerOff (same operation id) answers the disks it handed over and does not run twice', async () => {
      const [a, b] = agents as [InProcessAgent, InProcessAgent];
      const instance = buildTestInstance({ hostId: a.hostId, flavor: tinyTestFlavor });
      await a.driver.spawn({
        instance,
        flavor: tinyTestFlavor,
        image: (await engine.images.get('img'))!,
        images: engine.images,
        ports: [],
        volumes: [],
      });
      const target = await b.driver.prepareColdMigrationTarget(instance, tinyTestFlavor);
      const before = a.fake.calls.migrateDisksAndPowerOff ?? 0;
      const call = () =>
        bus.client.call(
          a.hostId,
          moveRpc.migrateDisksAndPowerOff,
          { instance, target },
          { deadlineMs: 5000, operationId: 'op-resent-disks' },
        );
      const first = await call();
      const second = await call();
      expect(second).toEqual(first);
      expect(first.params.imageId).toBe('img');
      // the guest was handed over once: a second real run would have failed on a missing guest
      expect(a.fake.calls.migrateDisksAndPowerOff).toBe(before + 1);
      await a.driver.confirmMigration(instance);
      await a.driver.destroy(instance);
    });

    it('refuses a malformed move payload with a typed error naming the field; the driver never runs', async () => {
      const a = agents[0]!;
      const instance = buildTestInstance({ hostId: a.hostId, flavor: tinyTestFlavor });
      const before = a.fake.calls.forceCompleteLiveMigration ?? 0;
      await expect(
        bus.client.call(
          a.hostId,
          moveRpc.forceCompleteLiveMigration,
          // a downtime far beyond a day: the shared schema refuses it (the client checks it before
          // sending, the agent again before a handler runs)
          { instance, mode: { kind: 'downtime', downtimeMs: 1e12 } } as never,
          { deadlineMs: 5000 },
        ),
      ).rejects.toThrow(/downtimeMs/);
      expect(a.fake.calls.forceCompleteLiveMigration ?? 0).toBe(before);
    });
  },
);
