import {
  type ComputeEngine,
  createCompute,
  defaultEngineOptions,
  ErrorCode,
  type InstanceEvent,
} from '@nova-lfs/core';
import Dockerode from 'dockerode';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DockerDriver } from './docker-driver.js';
import { available, busyboxImages, removeHostContainers } from './docker-env.test-helper.js';
import { INSTANCE_LABEL } from './labels.js';

const HOSTS = ['fail-a', 'fail-b'];

/**
 * Builds that fail on real Docker hosts, through the engine: the driver's error classes and its
 * handling of the deadline signal decide what the engine does next.
 */
describe.skipIf(!available)('Docker build failures through the engine (real dockerd)', () => {
  const docker = new Dockerode();
  let compute: ComputeEngine | undefined;
  const events: InstanceEvent[] = [];

  const open = async (spawnTimeoutMs = defaultEngineOptions.timeouts.spawn) => {
    const { images, tar } = await busyboxImages();
    compute = await createCompute({
      storage: 'memory',
      images,
      flavors: [{ id: 'c1', vcpus: 1, ramMb: 64 }],
      hosts: HOSTS.map((id) => ({ id, driver: new DockerDriver({ hostId: id, stopTimeoutSeconds: 1 }) })),
      engine: { maxBuildAttempts: 2, timeouts: { ...defaultEngineOptions.timeouts, spawn: spawnTimeoutMs } },
    });
    compute.events$.subscribe((e) => events.push(e));
    return { compute, images, tar };
  };
  const create = (engine: ComputeEngine, imageId: string) =>
    engine.create({ name: 'failing', projectId: 'p', userId: 'u', flavorId: 'c1', imageId });
  const containersOf = (instanceId: string) =>
    docker.listContainers({ all: true, filters: { label: [`${INSTANCE_LABEL}=${instanceId}`] } });

  afterEach(async () => {
    await compute?.close();
    compute = undefined;
    events.length = 0;
  }, 60_000);

  afterAll(async () => {
    for (const h of HOSTS) await removeHostContainers(h);
  }, 60_000);

  it('does not reschedule an image whose bytes fail their sha256: ERROR after one host, no container anywhere', async () => {
    const { compute, images, tar } = await open();
    const bad = await images.register(
      { id: 'bad-sum', name: 'bad-sum', diskFormat: 'tar', sha256: 'f'.repeat(64) },
      { kind: 'file', path: tar },
    );
    const [vm] = await create(compute, bad.id);
    expect(vm).toMatchObject({ vmState: 'error' });
    expect(vm!.fault?.details).toMatchObject({ attempts: 1, reschedule: false });
    expect(vm!.fault?.details?.hostsTried).toHaveLength(1);
    expect(events.some((e) => e.type === 'instance.rescheduled' && e.instanceId === vm!.id)).toBe(false);
    expect(await containersOf(vm!.id)).toEqual([]);
  }, 60_000);

  it('aborts a spawn past its deadline on every host it tries and leaves no container behind', async () => {
    // create + start of a container take a few hundred ms: every attempt passes the 40 ms deadline
    const { compute } = await open(40);
    const [vm] = await create(compute, 'busybox');
    expect(vm).toMatchObject({ vmState: 'error' });
    expect(vm!.fault).toMatchObject({ code: ErrorCode.DeadlineExceeded });
    expect(vm!.fault?.details?.hostsTried).toEqual(expect.arrayContaining(HOSTS));
    expect(await containersOf(vm!.id)).toEqual([]);
  }, 60_000);
});
