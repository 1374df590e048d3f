import {
  CapabilityUnsupportedError,
  type ComputeEngine,
  createCompute,
  type InstanceEvent,
} from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerDriver } from './docker-driver.js';
import { available, busyboxImages, removeHostContainers } from './docker-env.test-helper.js';
import { containerName, INSTANCE_LABEL } from './labels.js';

const until = async (check: () => Promise<boolean>, ms = 15_000): Promise<void> => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not reached in time');
};

describe.skipIf(!available)('DockerDriver through the engine (real dockerd)', () => {
  const docker = new Dockerode();
  let compute: ComputeEngine;
  const events: InstanceEvent[] = [];
  const hosts = ['dock-a', 'dock-b'];
  const drivers = new Map(hosts.map((id) => [id, new DockerDriver({ hostId: id, stopTimeoutSeconds: 2 })]));
  const driverOf = (hostId: string | null | undefined) => drivers.get(hostId ?? '')!;

  beforeAll(async () => {
    for (const h of hosts) await removeHostContainers(h);
    const { images } = await busyboxImages();
    compute = await createCompute({
      storage: 'memory',
      images,
      flavors: [{ id: 'c1', vcpus: 1, ramMb: 64 }],
      quota: { defaults: { instances: -1, cores: -1, ramMb: -1 } },
      hosts: hosts.map((id) => ({ id, driver: driverOf(id) })),
    });
    compute.events$.subscribe((e) => events.push(e));
  }, 120_000);

  afterAll(async () => {
    if (!compute) return;
    for (const i of await compute.list()) await compute.delete(i.id).catch(() => undefined);
    await compute.close();
    for (const h of hosts) await removeHostContainers(h);
  }, 120_000);

  const boot = async (name = 'web', metadata: Record<string, string> = {}) => {
    const [vm] = await compute.create({
      name,
      projectId: 'proj',
      userId: 'u',
      flavorId: 'c1',
      imageId: 'busybox',
      metadata,
    });
    expect(vm!.vmState).toBe('active');
    return vm!;
  };

  it('boots a container whose process produces output, with limits and labels from the instance', async () => {
    const vm = await boot('web', { role: 'frontend' });
    await until(async () => (await compute.consoleOutput(vm.id)).includes(`instance ${vm.id} booted`));
    const info = await docker.getContainer(containerName(vm.id)).inspect();
    expect(info.State.Running).toBe(true);
    expect(info.HostConfig.NanoCpus).toBe(1e9);
    expect(info.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.Config.Labels).toMatchObject({
      [INSTANCE_LABEL]: vm.id,
      'nova-lfs.project': 'proj',
      'nova-lfs.meta.role': 'frontend',
    });
    await compute.delete(vm.id);
  });

  it('pauses and unpauses, stops and starts, and deletes leaving no container', async () => {
    const vm = await boot();
    const c = docker.getContainer(containerName(vm.id));
    await compute.pause(vm.id);
    expect((await c.inspect()).State.Paused).toBe(true);
    expect((await compute.get(vm.id)).vmState).toBe('paused');
    await compute.unpause(vm.id);
    expect((await c.inspect()).State.Running).toBe(true);
    await compute.powerOff(vm.id);
    expect((await c.inspect()).State.Running).toBe(false);
    expect(await compute.get(vm.id)).toMatchObject({ vmState: 'stopped', powerState: 'shutdown' });
    await compute.powerOn(vm.id);
    expect((await c.inspect()).State.Running).toBe(true);
    await compute.reboot(vm.id, 'hard');
    expect((await c.inspect()).State.Running).toBe(true);
    await compute.delete(vm.id);
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`${INSTANCE_LABEL}=${vm.id}`] },
    });
    expect(left).toEqual([]);
  });

  it('turns a container killed from outside into a power-state event: the instance goes to stopped', async () => {
    const vm = await boot();
    await docker.getContainer(containerName(vm.id)).kill();
    await until(async () => (await compute.get(vm.id)).vmState === 'stopped');
    expect(await compute.get(vm.id)).toMatchObject({
      vmState: 'stopped',
      powerState: 'shutdown',
      taskState: null,
    });
    expect(
      events.some(
        (e) =>
          e.type === 'instance.state' &&
          e.instanceId === vm.id &&
          e.vmState === 'stopped' &&
          e.previous.taskState === null,
      ),
    ).toBe(true);
    await compute.powerOn(vm.id);
    expect((await compute.get(vm.id)).vmState).toBe('active');
    await compute.delete(vm.id);
  });

  it('refuses suspend with a typed error: containers cannot be saved to disk', async () => {
    const vm = await boot();
    const err = await compute.suspend(vm.id).catch((e) => e);
    expect(err).toBeInstanceOf(CapabilityUnsupportedError);
    expect(err.details).toMatchObject({ capability: 'suspend', driver: 'docker' });
    expect((await compute.get(vm.id)).vmState).toBe('active');
    await compute.delete(vm.id);
  });

  it("places instances across both driver hosts and lists each host's own containers", async () => {
    const vms = await compute.create({
      name: 'spread',
      projectId: 'proj',
      userId: 'u',
      flavorId: 'c1',
      imageId: 'busybox',
      count: 4,
    });
    const byHost = new Set(vms.map((v) => v.hostId));
    expect(byHost).toEqual(new Set(hosts));
    for (const h of hosts) {
      const listed = await driverOf(h).listInstances();
      const expected = vms
        .filter((v) => v.hostId === h)
        .map((v) => v.id)
        .sort();
      expect(listed.map((g) => g.instanceId).sort()).toEqual(expected);
    }
    await Promise.all(vms.map((v) => compute.delete(v.id)));
  });

  it('keeps hostile names and metadata inert (labels are JSON, the container name comes from the uuid)', async () => {
    const hostile = `x'; touch /tmp/pwned; echo "$(id)" \`ls\` <a>&{"k":1}`;
    const vm = await boot(hostile, { [hostile]: hostile });
    const info = await docker.getContainer(containerName(vm.id)).inspect();
    expect(info.Config.Labels['nova-lfs.name']).toBe(hostile);
    expect(info.Config.Labels[`nova-lfs.meta.${hostile}`]).toBe(hostile);
    expect(info.Name).toBe(`/${containerName(vm.id)}`);
    await compute.delete(vm.id);
  });

  it('rebuilds with another image and snapshots into the image store with a verified sha256', async () => {
    const vm = await boot();
    const driver = driverOf(vm.hostId);
    const direct = await driver.snapshot(vm, { name: 'direct', images: compute.images });
    expect(direct.sha256).toMatch(/^[0-9a-f]{64}$/);
    // through the engine (Nova's createImage): an image_snapshot task, listed before it resolves
    const snap = await compute.snapshot(vm.id, 'snap');
    expect((await compute.images.list()).map((i) => i.id)).toContain(snap.id);
    expect(snap.name).toBe('snap');
    expect(snap.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await compute.get(vm.id)).toMatchObject({ vmState: 'active', taskState: null });
    expect((await compute.listActions(vm.id)).at(-1)).toMatchObject({
      action: 'snapshot',
      result: 'success',
    });
    expect(snap.diskFormat).toBe('tar');
    const local = await compute.images.acquire(snap.id);
    expect(local.image.sizeBytes).toBeGreaterThan(100_000);
    const rebuilt = await compute.rebuild(vm.id, { imageId: snap.id });
    expect(rebuilt).toMatchObject({ imageId: snap.id, vmState: 'active' });
    const info = await docker.getContainer(containerName(vm.id)).inspect();
    expect(info.Config.Image).toBe(`nova-lfs/image:${snap.sha256}`);
    await compute.delete(vm.id);
  });

  it('reconciles: lists containers by label and reports ones the engine does not know as orphans', async () => {
    const { images, image } = await busyboxImages();
    const stranger = buildTestInstance({ flavor: { ...tinyTestFlavor, ramMb: 64 }, hostId: 'dock-a' });
    await driverOf('dock-a').spawn({
      instance: stranger,
      flavor: stranger.flavor,
      image,
      images,
      ports: [],
      volumes: [],
    });
    const report = await compute.reconcile();
    expect(report.orphans).toContainEqual({ instanceId: stranger.id, hostId: 'dock-a', reaped: false });
    await driverOf('dock-a').destroy(stranger);
  });
});
