import { type ComputeEngine, createCompute } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { describe, expect, it } from 'vitest';
import { createScheduler, type SchedulerOptions, schedulerFactory } from '../create-scheduler.js';
import { flavor, GatedDriver, host, request } from '../test-fixtures.test-helper.js';
import { LimitsReason } from './limits-filters.js';

async function oneHostCloud(
  driver: FakeDriver,
  options?: SchedulerOptions,
): Promise<{ compute: ComputeEngine; req: Parameters<ComputeEngine['create']>[0] }> {
  const compute = await createCompute({
    storage: 'memory',
    ...(options ? { scheduler: schedulerFactory(options) } : {}),
    flavors: [{ id: 'small', vcpus: 1, ramMb: 1024 }],
    quota: { defaults: { instances: -1, cores: -1, ramMb: -1 } },
    hosts: [{ id: 'big', driver }],
  });
  await compute.images.register(
    { id: 'img', name: 'img', diskFormat: 'raw', sha256: 'a'.repeat(64) },
    { kind: 'bytes', bytes: new Uint8Array() },
  );
  return { compute, req: { name: 'vm', projectId: 'p', userId: 'u', flavorId: 'small', imageId: 'img' } };
}

const bigHost = () => new FakeDriver({ hostname: 'big', vcpus: 64, ramMb: 262_144 });

describe('MaxInFlightBuilds through the engine (issue 11, defect 4)', () => {
  it('is off by default: one request for 9 instances on one idle 64-vCPU host builds all 9', async () => {
    const { compute, req } = await oneHostCloud(bigHost());
    const vms = await compute.create({ ...req, count: 9 });
    expect(vms.map((v) => v.vmState)).toEqual(Array(9).fill('active'));
    await compute.close();
  });

  it('is off by default: 12 concurrent creates on one host all go active', async () => {
    const driver = new GatedDriver({ hostname: 'big', vcpus: 64, ramMb: 262_144 });
    const { compute, req } = await oneHostCloud(driver);
    const creates = Array.from({ length: 12 }, () => compute.create(req));
    await driver.spawnsStarted(12);
    driver.open();
    const vms = (await Promise.all(creates)).flat();
    expect(vms.map((v) => v.vmState)).toEqual(Array(12).fill('active'));
    await compute.close();
  });

  it("when opted in, never counts the request's own instances", async () => {
    const { compute, req } = await oneHostCloud(bigHost(), { maxInFlightBuilds: 2 });
    const vms = await compute.create({ ...req, count: 5 });
    expect(vms.map((v) => v.vmState)).toEqual(Array(5).fill('active'));
    await compute.close();
  });

  it("when opted in, limits other requests' builds in flight on a host until they finish", async () => {
    const driver = new GatedDriver({ hostname: 'big', vcpus: 64, ramMb: 262_144 });
    const { compute, req } = await oneHostCloud(driver, { maxInFlightBuilds: 2 });
    const first = compute.create({ ...req, count: 2 });
    await driver.spawnsStarted(2);
    const [refused] = await compute.create(req);
    expect(refused!.vmState).toBe('error');
    expect(refused!.fault!.details).toMatchObject({
      rejections: { MaxInFlightBuilds: { [LimitsReason.TooManyBuilds]: 1 } },
    });
    driver.open();
    expect((await first).map((v) => v.vmState)).toEqual(['active', 'active']);
    const [later] = await compute.create(req);
    expect(later!.vmState).toBe('active');
    await compute.close();
  });
});

describe('MaxInFlightBuilds in the scheduler', () => {
  it('is not in the built-in profiles unless its limit is set', () => {
    expect(createScheduler().profile.filters.map((f) => f.name)).not.toContain('MaxInFlightBuilds');
    expect(createScheduler({ profile: 'binpack' }).profile.filters.map((f) => f.name)).not.toContain(
      'MaxInFlightBuilds',
    );
    const limited = createScheduler({ maxInFlightBuilds: 3 }).profile.filters.map((f) => f.name);
    expect(limited.at(-1)).toBe('MaxInFlightBuilds');
  });

  it('places a request for more instances than the limit on one host', async () => {
    const s = createScheduler({ maxInFlightBuilds: 2 });
    s.upsertHost(host('only', { vcpus: 64 }));
    const placed = await s.select(request(flavor(1, 256), 6));
    expect(placed.map((p) => p.hostId)).toEqual(Array(6).fill('only'));
    const err = await s.select(request(flavor(1, 256))).catch((e) => e);
    expect(err.details.rejections).toEqual({ MaxInFlightBuilds: { [LimitsReason.TooManyBuilds]: 1 } });
  });
});
