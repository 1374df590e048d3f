import { type ComputeEngine, createCompute, ErrorCode } from '@nova-lfs/core';
import Dockerode from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerDriver } from './docker-driver.js';
import { available, busyboxImages, removeHostContainers } from './docker-env.test-helper.js';
import { DockerScopeConflictError } from './errors.js';
import { containerName } from './labels.js';

describe.skipIf(!available)('DockerDriver host scopes (real dockerd)', () => {
  const docker = new Dockerode();
  const opened: Array<{ close(): Promise<void> }> = [];

  afterAll(async () => {
    for (const o of opened) await o.close();
    for (const h of ['docker', 'scope-a', 'scope-b', 'scope-x']) await removeHostContainers(h);
  }, 60_000);

  it('refuses a second host bound to a default DockerDriver on the same dockerd, before any guest runs', async () => {
    const { images } = await busyboxImages();
    const a = new DockerDriver();
    const b = new DockerDriver();
    opened.push(a, b);
    const err = await createCompute({
      storage: 'memory',
      images,
      flavors: [{ id: 'c1', vcpus: 1, ramMb: 64 }],
      hosts: [
        { id: 'node-1', driver: a },
        { id: 'node-2', driver: b },
      ],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DockerScopeConflictError);
    expect(err).toMatchObject({ code: ErrorCode.Configuration, details: { setting: 'hostId' } });
    await a.close();
    await b.close();
  });

  it('lets a driver take over the scope of a closed one (an engine restart in one process)', async () => {
    const first = new DockerDriver({ hostId: 'scope-x' });
    const second = new DockerDriver({ hostId: 'scope-x' });
    opened.push(first, second);
    await first.getHostReport();
    await expect(second.getHostReport()).rejects.toBeInstanceOf(DockerScopeConflictError);
    await first.getHostReport(); // the owner may read its report again
    await first.close();
    await expect(second.getHostReport()).resolves.toMatchObject({ hypervisorType: 'docker' });
    await second.close();
  });

  it('two hosts on one dockerd, one engine, reapOrphans on: reconciliation keeps both guests running', async () => {
    const { images } = await busyboxImages();
    let compute: ComputeEngine | undefined;
    try {
      compute = await createCompute({
        storage: 'memory',
        images,
        flavors: [{ id: 'c1', vcpus: 1, ramMb: 64 }],
        quota: { defaults: { instances: -1, cores: -1, ramMb: -1 } },
        hosts: [
          { id: 'scope-a', driver: new DockerDriver({ hostId: 'scope-a' }), availabilityZone: 'az-a' },
          { id: 'scope-b', driver: new DockerDriver({ hostId: 'scope-b' }), availabilityZone: 'az-b' },
        ],
        engine: { reapOrphans: true },
      });
      const boot = async (availabilityZone: string) => {
        const [vm] = await compute!.create({
          name: availabilityZone,
          projectId: 'p',
          userId: 'u',
          flavorId: 'c1',
          imageId: 'busybox',
          availabilityZone,
        });
        expect(vm).toMatchObject({ vmState: 'active', fault: null });
        return vm!;
      };
      const a = await boot('az-a');
      const b = await boot('az-b');
      expect([a.hostId, b.hostId]).toEqual(['scope-a', 'scope-b']);
      const report = await compute.reconcile();
      expect(report.orphans).toEqual([]);
      for (const vm of [a, b]) {
        expect((await docker.getContainer(containerName(vm.id)).inspect()).State.Running).toBe(true);
        expect(await compute.get(vm.id)).toMatchObject({ vmState: 'active', powerState: 'running' });
      }
      await compute.delete(a.id);
      await compute.delete(b.id);
    } finally {
      await compute?.close();
    }
  }, 60_000);
});
