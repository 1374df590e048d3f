import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { agentInboxPrefix, BusErrorCode, BusRpcClient, BusRpcServer, connectBus } from '@nova-lfs/bus-nats';
import { type NatsTestServer, startNatsServer } from '@nova-lfs/bus-nats/testing';
import { type ComputeEngine, createCompute, ErrorCode, type Image, type Instance } from '@nova-lfs/core';
import { FirstFitScheduler } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  available,
  type ControlPlaneBus,
  controlPlaneBus,
  natsUrl,
  RecordingLogger,
  tempDir,
  uniqueHostId,
  waitFor,
} from './agent-env.test-helper.js';
import { AgentImageCache } from './agent-image-cache.js';
import { imageFetchFailure } from './errors.js';
import { readFileChunk } from './image-chunks.js';
import { imageRpc, MAX_CHUNK_BYTES } from './image-transfer-protocol.js';
import { RemoteDriver } from './remote-driver.js';
import { type AgentProcess, startAgentProcess } from './testing/index.js';

const chunksOf = (bytes: number) => Math.ceil(bytes / MAX_CHUNK_BYTES);

/** Files in `dir` (none when it does not exist). */
const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

describe.skipIf(!available)('images over the bus: an agent with its own image cache (child process)', () => {
  let bus: ControlPlaneBus;
  let agent: AgentProcess;
  let driver: RemoteDriver;
  let engine: ComputeEngine;
  const dir = available ? tempDir() : '';
  const cacheDir = join(dir, 'agent-cache');
  const hostId = uniqueHostId('img');

  const request = (name: string, imageId: string) => ({
    name,
    projectId: 'p1',
    userId: 'u1',
    flavorId: 'f1',
    imageId,
  });
  const importImage = async (id: string, size: number): Promise<{ image: Image; bytes: Buffer }> => {
    const bytes = randomBytes(size);
    const image = await engine.images.import({ id, name: id, diskFormat: 'raw' }, { kind: 'bytes', bytes });
    return { image, bytes };
  };

  beforeAll(async () => {
    bus = await controlPlaneBus();
    agent = await startAgentProcess({
      hostId,
      natsUrl,
      stateDir: join(dir, 'state'),
      heartbeatMs: 1000,
      // the FAKE driver reads the bytes; the agent's cache is a directory of its own
      extraArgs: ['--fake-acquire-images', '--image-cache', cacheDir],
    });
    driver = await RemoteDriver.connect({
      hostId,
      client: bus.client,
      subscriber: bus.subscriber,
      imageServer: bus.imageServer,
    });
    engine = await createCompute({
      storage: 'memory',
      scheduler: ({ claims }) => new FirstFitScheduler(claims),
      flavors: [{ id: 'f1', vcpus: 1, ramMb: 64, diskGb: 0 }],
      quota: { defaults: { instances: 100, cores: 100, ramMb: 100_000 } },
      hosts: [{ id: hostId, driver }],
      engine: { reconcileIntervalMs: 0 },
    });
  }, 60_000);

  afterAll(async () => {
    await engine?.close();
    await driver?.close();
    await agent?.stop();
    await bus?.close();
  });

  it('spawns from bytes fetched into its own cache; a second spawn reuses them (no second fetch); snapshots come back over the bus', async () => {
    const size = 2 * MAX_CHUNK_BYTES + 1000;
    const { image, bytes } = await importImage('img-a', size);
    const [one] = await engine.create(request('one', 'img-a'));
    expect(one).toMatchObject({ vmState: 'active', hostId });
    // fetched chunk by chunk over the bus into the agent's directory, not read from ours
    expect(bus.imageServer.chunksServed(image.sha256)).toBe(chunksOf(size));
    const ours = (await engine.images.acquire('img-a')).path;
    expect(ours.startsWith(cacheDir)).toBe(false);
    expect(readFileSync(join(cacheDir, 'blobs', image.sha256)).equals(bytes)).toBe(true);
    expect(filesIn(join(cacheDir, 'tmp'))).toEqual([]);

    const [two] = await engine.create(request('two', 'img-a'));
    expect(two).toMatchObject({ vmState: 'active', hostId });
    expect(bus.imageServer.chunksServed(image.sha256)).toBe(chunksOf(size));

    // the FAKE driver's snapshot is staged on the agent and read back chunk by chunk
    const snap = await engine.snapshot(one!.id, 'snap-one');
    const staged = JSON.parse(readFileSync((await engine.images.acquire(snap.id)).path, 'utf8'));
    expect(staged).toEqual({ fakeSnapshotOf: one!.id, imageId: 'img-a' });
    const snapshots = join(dir, 'state', 'snapshots', 'blobs');
    await waitFor(() => filesIn(snapshots).length === 0, 5000, 'staged snapshot released');
    for (const i of [one, two] as Instance[]) await engine.delete(i.id);
  });

  it('concurrent spawns of one image fetch it once', async () => {
    const size = MAX_CHUNK_BYTES + 10;
    const { image } = await importImage('img-b', size);
    const built = await Promise.all(['c1', 'c2', 'c3'].map((n) => engine.create(request(n, 'img-b'))));
    for (const [i] of built) expect(i).toMatchObject({ vmState: 'active' });
    expect(bus.imageServer.chunksServed(image.sha256)).toBe(chunksOf(size));
    for (const [i] of built) await engine.delete(i!.id);
  });

  it('bytes that do not match the recorded sha256 fail the build with a fault naming the image; nothing is cached', async () => {
    const { image } = await importImage('img-c', MAX_CHUNK_BYTES + 77);
    // the control plane's verified copy is damaged on its disk after it checked it
    const ours = (await engine.images.acquire('img-c')).path;
    const fd = openSync(ours, 'r+');
    writeSync(fd, Buffer.from([0xff, 0x00, 0xff]), 0, 3, MAX_CHUNK_BYTES + 5);
    closeSync(fd);
    const [vm] = await engine.create(request('bad', 'img-c'));
    expect(vm).toMatchObject({ vmState: 'error' });
    expect(vm!.fault).toMatchObject({
      code: ErrorCode.Driver,
      details: { imageId: 'img-c', imageFetch: 'checksum', hostId, reschedule: false },
    });
    expect(vm!.fault?.message).toContain('img-c');
    expect(existsSync(join(cacheDir, 'blobs', image.sha256))).toBe(false);
    expect(filesIn(join(cacheDir, 'tmp'))).toEqual([]);
    expect((await driver.listInstances()).map((g) => g.instanceId)).not.toContain(vm!.id);
    await engine.delete(vm!.id);
  });

  it('an image the control plane did not send this host is missing (NLFS_NOT_FOUND), typed, and not cached', async () => {
    const { image } = await importImage('img-d', 1000);
    const stranger = uniqueHostId('stranger');
    const nc = await connectBus({ servers: natsUrl, inboxPrefix: agentInboxPrefix(stranger) });
    const strangerDir = join(dir, 'stranger');
    const cache = new AgentImageCache({
      dir: strangerDir,
      client: new BusRpcClient(nc, { senderId: stranger, logger: new RecordingLogger() }),
    });
    try {
      const artifact = { path: '/nowhere', sha256: image.sha256, servedBy: bus.imageServer.controlPlaneId };
      const e = await cache.acquire(image, artifact).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: ErrorCode.NotFound, details: { kind: 'image' } });
      const failure = imageFetchFailure(e, {
        driver: 'fake',
        operation: 'spawn',
        imageId: image.id,
        servedBy: artifact.servedBy,
      });
      expect(failure.details).toMatchObject({ imageId: 'img-d', imageFetch: 'missing', reschedule: false });
      expect(filesIn(join(strangerDir, 'blobs'))).toEqual([]);
      expect(bus.imageServer.chunksServed(image.sha256)).toBe(0);
    } finally {
      await nc.close();
    }
  });
  it('an older control plane (no servedBy): a path under --shared-image-dir is read in place, any other path is never opened', async () => {
    const { image } = await importImage('img-e', 500);
    const ours = (await engine.images.acquire('img-e')).path;
    const nc = await connectBus({ servers: natsUrl, inboxPrefix: agentInboxPrefix('shared-1') });
    const client = new BusRpcClient(nc, { senderId: 'shared-1', logger: new RecordingLogger() });
    try {
      const shared = new AgentImageCache({
        dir: join(dir, 'shared-cache'),
        client,
        sharedDir: dirname(ours),
      });
      expect(await shared.acquire(image, { path: ours, sha256: image.sha256 })).toEqual({
        image,
        path: ours,
      });
      expect(shared.fetchCount).toBe(0);
      const apart = new AgentImageCache({
        dir: join(dir, 'apart-cache'),
        client,
        sharedDir: join(dir, 'elsewhere'),
      });
      const e = await apart.acquire(image, { path: ours, sha256: image.sha256 }).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: ErrorCode.NotFound });
      expect(apart.fetchCount).toBe(0);
    } finally {
      await nc.close();
    }
  });
});

describe.skipIf(!available)('a connection lost in the middle of a fetch (own nats-server)', () => {
  let server: NatsTestServer;
  let cp: NatsConnection;
  let agentNc: NatsConnection;
  const dir = available ? tempDir() : '';

  beforeAll(async () => {
    server = await startNatsServer();
    cp = await connectBus({ servers: server.url });
    agentNc = await connectBus({ servers: server.url, inboxPrefix: agentInboxPrefix('lost-1') });
  });

  afterAll(async () => {
    await Promise.all([cp?.close(), agentNc?.close()]);
    await server?.dispose();
  });

  it('fails with the typed connection error, and leaves neither a cache entry nor a temp file', async () => {
    const bytes = randomBytes(3 * MAX_CHUNK_BYTES);
    const source = join(dir, 'source.raw');
    writeFileSync(source, bytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const reads: number[] = [];
    // a control plane that serves the first chunk, then loses its server while the second is asked for
    const rpc = new BusRpcServer(cp, {
      hostId: 'cp-lost',
      serves: 'controlPlane',
      logger: new RecordingLogger(),
    });
    rpc.handle(imageRpc.read, async (p) => {
      reads.push(p.offset);
      if (p.offset > 0) await server.stop();
      return readFileChunk(source, p.offset, p.length);
    });
    await rpc.start();
    const cacheDir = join(dir, 'cache');
    const cache = new AgentImageCache({
      dir: cacheDir,
      client: new BusRpcClient(agentNc, { senderId: 'lost-1', logger: new RecordingLogger() }),
      chunkDeadlineMs: 5000,
    });
    const image: Image = {
      id: 'img-lost',
      name: 'img-lost',
      diskFormat: 'raw',
      containerFormat: 'bare',
      sha256,
      sizeBytes: bytes.length,
      properties: {},
      createdAt: Date.now(),
    };
    const e = await cache
      .acquire(image, { path: '/nowhere', sha256, servedBy: 'cp-lost', sizeBytes: bytes.length })
      .catch((x: unknown) => x);
    expect(reads).toEqual([0, MAX_CHUNK_BYTES]);
    expect(e).toMatchObject({ code: BusErrorCode.ConnectionLost });
    const failure = imageFetchFailure(e, {
      driver: 'fake',
      operation: 'spawn',
      imageId: image.id,
      servedBy: 'cp-lost',
    });
    expect(failure.details).toMatchObject({ imageFetch: 'connection', retryable: true, reschedule: true });
    expect(filesIn(join(cacheDir, 'blobs'))).toEqual([]);
    expect(filesIn(join(cacheDir, 'tmp'))).toEqual([]);
    await server.start();
    await rpc.stop();
  });
});
