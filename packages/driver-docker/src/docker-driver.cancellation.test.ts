import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DeadlineExceededError, type Image, type ImageService, type LocalArtifact } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerDriver } from './docker-driver.js';
import { available, busyboxImages, removeHostContainers } from './docker-env.test-helper.js';
import { containerName, imageReference } from './labels.js';

const run = promisify(execFile);
const HOST = 'cancel';

/** Resolves with the first dockerd event of `container` whose Action starts with `action`. */
async function nextEvent(docker: Dockerode, container: string, action: string): Promise<void> {
  const stream = (await docker.getEvents({
    filters: { type: ['container'], container: [container] },
  })) as NodeJS.ReadableStream & { destroy(): void };
  await new Promise<void>((resolve) => {
    let rest = '';
    stream.on('data', (chunk: Buffer) => {
      rest += chunk.toString('utf8');
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      if (lines.some((l) => l.trim() && (JSON.parse(l) as { Action?: string }).Action?.startsWith(action))) {
        stream.destroy();
        resolve();
      }
    });
  });
}

async function containerExists(docker: Dockerode, instanceId: string): Promise<boolean> {
  return docker
    .getContainer(containerName(instanceId))
    .inspect()
    .then(
      () => true,
      (e: { statusCode?: number }) => {
        if (e.statusCode === 404) return false;
        throw e;
      },
    );
}

describe.skipIf(!available)('DockerDriver cancellation (real dockerd)', () => {
  const docker = new Dockerode();
  const driver = new DockerDriver({ hostId: HOST, stopTimeoutSeconds: 1 });
  const loadedRefs: string[] = [];
  let images: ImageService;
  let image: Image;
  let tar: string;
  let work: string;

  /** A rootfs image with bytes (and so a sha256) of its own, not yet loaded into dockerd. */
  const freshImage = async (): Promise<Image> => {
    const dir = await mkdtemp(join(work, 'img-'));
    const copy = join(dir, 'rootfs.tar');
    await copyFile(tar, copy);
    await writeFile(join(dir, 'nonce'), randomUUID());
    await run('tar', ['-rf', copy, '-C', dir, 'nonce']);
    const fresh = await images.import(
      { name: 'fresh', diskFormat: 'tar', containerFormat: 'docker' },
      { kind: 'file', path: copy },
    );
    loadedRefs.push(imageReference(fresh.sha256).ref);
    return fresh;
  };
  const request = (i: ReturnType<typeof buildTestInstance>, img: Image, signal?: AbortSignal) => ({
    instance: i,
    flavor: i.flavor,
    image: img,
    images,
    ports: [],
    volumes: [],
    ...(signal ? { signal } : {}),
  });
  const instance = (metadata: Record<string, string> = {}) =>
    buildTestInstance({ flavor: { ...tinyTestFlavor, ramMb: 64 }, hostId: HOST, metadata });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nlfs-docker-cancel-'));
    ({ images, image, tar } = await busyboxImages());
    await driver.getHostReport();
  }, 60_000);

  afterAll(async () => {
    await driver.close();
    await removeHostContainers(HOST);
    for (const ref of loadedRefs)
      await docker
        .getImage(ref)
        .remove({ force: true })
        .catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('cuts an image upload on the wire when the spawn aborts: rejects with the reason, tags no image, creates no container', async () => {
    const fresh = await freshImage();
    const fifo = join(await mkdtemp(join(work, 'fifo-')), 'upload');
    await run('mkfifo', [fifo]);
    const controller = new AbortController();
    const reason = new DeadlineExceededError({ operation: 'spawn', timeoutMs: 1 });
    // the artifact is a FIFO this test writes into, so the upload is known to be under way
    const slowImages: ImageService = {
      ...images,
      acquire: async (id: string): Promise<LocalArtifact> => ({ ...(await images.acquire(id)), path: fifo }),
    };
    const i = instance();
    const spawning = driver.spawn({ ...request(i, fresh, controller.signal), images: slowImages });
    const writer = await open(fifo, 'w');
    const bytes = Buffer.alloc(256 * 1024); // more than a pipe holds: the reader has taken some
    await writer.write(bytes.subarray(0, 128 * 1024));
    await writer.write(bytes.subarray(128 * 1024));
    controller.abort(reason);
    await expect(spawning).rejects.toBe(reason);
    await writer.close().catch(() => undefined);
    await expect(docker.getImage(imageReference(fresh.sha256).ref).inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
    expect(await containerExists(docker, i.id)).toBe(false);
    // the loader is not stuck on the abandoned load: the next spawn imports and runs
    await driver.spawn(request(i, fresh));
    expect(await driver.getPowerState(i)).toBe('running');
    await driver.destroy(i);
  }, 60_000);

  it('keeps a shared image load going for the spawns that still wait when one of them aborts', async () => {
    const fresh = await freshImage();
    const quitter = instance();
    const stayer = instance();
    const reason = new DeadlineExceededError({ operation: 'spawn', timeoutMs: 1 });
    const controller = new AbortController();
    const quitting = driver.spawn(request(quitter, fresh, controller.signal));
    const staying = driver.spawn(request(stayer, fresh));
    controller.abort(reason);
    await expect(quitting).rejects.toBe(reason);
    await staying;
    expect(await driver.getPowerState(stayer)).toBe('running');
    expect(await containerExists(docker, quitter.id)).toBe(false);
    await driver.destroy(stayer);
  }, 60_000);

  it('lets a destroy that follows a spawn aborted after its create remove the container the create made', async () => {
    const i = instance();
    const controller = new AbortController();
    const reason = new DeadlineExceededError({ operation: 'spawn', timeoutMs: 1 });
    const created = nextEvent(docker, containerName(i.id), 'create');
    const spawning = driver.spawn(request(i, image, controller.signal)).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await created;
    controller.abort(reason);
    const result = await spawning;
    if (result !== 'resolved') expect(result).toBe(reason);
    await driver.destroy(i);
    expect(await containerExists(docker, i.id)).toBe(false);
    expect((await driver.listInstances()).some((g) => g.instanceId === i.id)).toBe(false);
  }, 60_000);

  it('stops waiting for a graceful stop when the signal aborts (the container ignores SIGTERM; the stop timeout is 120 s)', async () => {
    const i = instance({
      command: JSON.stringify(['sh', '-c', 'trap "" TERM; while true; do sleep 1; done']),
    });
    await driver.spawn(request(i, image));
    const controller = new AbortController();
    const reason = new DeadlineExceededError({ operation: 'powerOff', timeoutMs: 1 });
    const terminated = nextEvent(docker, containerName(i.id), 'kill');
    const stopping = driver.powerOff(i, { timeoutMs: 120_000, signal: controller.signal });
    await terminated; // dockerd sent SIGTERM and now waits for the timeout
    controller.abort(reason);
    await expect(stopping).rejects.toBe(reason);
    await driver.destroy(i);
    expect(await containerExists(docker, i.id)).toBe(false);
  }, 30_000);
});
