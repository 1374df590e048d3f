import { DriverError, ErrorCode } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerDriver } from './docker-driver.js';
import { available, busyboxImages, removeHostContainers } from './docker-env.test-helper.js';
import { DockerErrorCode, dockerRetryable } from './errors.js';

const HOST = 'errors';

describe('dockerRetryable', () => {
  it('retries a lost connection and a busy daemon, not a refused request', () => {
    expect(dockerRetryable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(
      true,
    );
    expect(dockerRetryable(new Error('socket hang up'))).toBe(true);
    expect(dockerRetryable({ statusCode: 503 })).toBe(true);
    expect(dockerRetryable({ statusCode: 500 })).toBe(true);
    expect(dockerRetryable({ statusCode: 409 })).toBe(false);
    expect(dockerRetryable({ statusCode: 400 })).toBe(false);
    expect(dockerRetryable(new Error('something else'))).toBeUndefined();
  });
});

describe.skipIf(!available)('DockerDriver error classification (real dockerd)', () => {
  const driver = new DockerDriver({ hostId: HOST, stopTimeoutSeconds: 1 });
  let subject: Awaited<ReturnType<typeof busyboxImages>>;
  const spawn = (flavor = { ...tinyTestFlavor, ramMb: 64 }) => {
    const instance = buildTestInstance({ flavor, hostId: HOST });
    const done = driver.spawn({
      instance,
      flavor,
      image: subject.image,
      images: subject.images,
      ports: [],
      volumes: [],
    });
    return { instance, done };
  };

  beforeAll(async () => {
    subject = await busyboxImages();
    await driver.getHostReport();
  }, 60_000);

  afterAll(async () => {
    await driver.close();
    await removeHostContainers(HOST);
  }, 60_000);

  it('refuses a flavor below the memory no Docker host runs with: reschedule false, no container', async () => {
    const { instance, done } = spawn({ ...tinyTestFlavor, ramMb: 4 });
    const err = await done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect(err).toMatchObject({ retryable: false, reschedule: false });
    expect(await driver.getPowerState(instance)).toBe('nostate');
  });

  it("fails a flavor larger than this dockerd's CPUs without retrying here, but lets a bigger host try", async () => {
    const { instance, done } = spawn({ ...tinyTestFlavor, ramMb: 64, vcpus: 4096 });
    const err = await done.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.Driver, retryable: false, reschedule: true });
    expect((err as DriverError).cause).toMatchObject({ statusCode: 400 });
    expect(await driver.getPowerState(instance)).toBe('nostate');
  });

  it('does not retry an action dockerd refuses for the state the container is in (HTTP 409)', async () => {
    const { instance, done } = spawn();
    await done;
    await driver.powerOff(instance, { timeoutMs: 1_000 });
    const err = await driver.pause(instance).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.Driver, retryable: false });
    expect((err as DriverError).cause).toMatchObject({ statusCode: 409 });
    await driver.destroy(instance);
  });

  it('marks calls to a dockerd that does not answer as retryable, and its host report as unavailable', async () => {
    const gone = new DockerDriver({ socketPath: '/nonexistent/docker.sock', hostId: 'gone' });
    const err = await gone.destroy(buildTestInstance()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.Driver, retryable: true });
    await expect(gone.getHostReport()).rejects.toMatchObject({ code: DockerErrorCode.Unavailable });
    await gone.close();
  });
});
