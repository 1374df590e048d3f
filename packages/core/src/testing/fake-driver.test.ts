import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { BuildAbortedError, DeadlineExceededError, DriverError } from '../errors.js';
import { LocalImageService } from '../image/local-image-service.js';
import type { Instance } from '../model/instance.js';
import { describeDriverConformance } from './driver-conformance.js';
import { FakeDriver } from './fake-driver.js';
import { buildTestInstance } from './test-instance.js';

async function fakeSubject(driver: FakeDriver) {
  const images = new LocalImageService(mkdtempSync(join(tmpdir(), 'nlfs-fake-')));
  const image = await images.import(
    { id: 'img', name: 'img', diskFormat: 'raw' },
    { kind: 'bytes', bytes: new Uint8Array([1]) },
  );
  return { driver, image, images };
}

describeDriverConformance(
  'FakeDriver',
  () => fakeSubject(new FakeDriver({ acquireImages: true, diskFormats: ['raw'] })),
  { unsupportedDiskFormat: 'tar' },
);

// with latency, the aborts of a running spawn land inside its (abortable) wait
describeDriverConformance('FakeDriver with 50 ms latency', () =>
  fakeSubject(new FakeDriver({ acquireImages: true, latencyMs: 50 })),
);

const spawnRequest = (d: FakeDriver, i: Instance, signal?: AbortSignal) =>
  d.spawn({
    instance: i,
    flavor: i.flavor,
    image: { id: 'x', diskFormat: 'raw' } as never,
    images: {} as never,
    ports: [],
    volumes: [],
    ...(signal ? { signal } : {}),
  });

describe('FakeDriver cancellation', () => {
  it('ends an injected hang before the effect when the signal aborts: rejects with the reason, no guest', async () => {
    const d = new FakeDriver();
    const i = buildTestInstance();
    d.hangNext('spawn', 'before');
    const controller = new AbortController();
    const spawning = spawnRequest(d, i, controller.signal);
    const reason = new BuildAbortedError(i.id);
    controller.abort(reason);
    await expect(spawning).rejects.toBe(reason);
    expect(d.hasGuest(i.id)).toBe(false);
  });

  it('ends an injected hang after the effect when the signal aborts; destroy removes what it left', async () => {
    const d = new FakeDriver();
    const i = buildTestInstance();
    d.hangNext('spawn', 'after');
    const controller = new AbortController();
    const spawning = spawnRequest(d, i, controller.signal);
    await vi.waitFor(() => expect(d.hasGuest(i.id)).toBe(true));
    const reason = new DeadlineExceededError({ operation: 'spawn', timeoutMs: 10 });
    controller.abort(reason);
    await expect(spawning).rejects.toBe(reason);
    expect(d.hasGuest(i.id)).toBe(true);
    await d.destroy(i);
    expect(d.hasGuest(i.id)).toBe(false);
  });

  it('cuts its latency short when the signal aborts (a one-hour latency would time the test out)', async () => {
    const d = new FakeDriver({ latencyMs: { pause: 3_600_000 } });
    const i = buildTestInstance();
    await spawnRequest(d, i);
    const controller = new AbortController();
    const pausing = d.pause(i, { signal: controller.signal });
    const reason = new DeadlineExceededError({ operation: 'pause', timeoutMs: 1 });
    controller.abort(reason);
    await expect(pausing).rejects.toBe(reason);
    expect(await d.getPowerState(i)).toBe('running');
  });

  it('counts a call refused for an already-aborted signal but changes nothing', async () => {
    const d = new FakeDriver();
    const i = buildTestInstance();
    const reason = new BuildAbortedError(i.id);
    await expect(spawnRequest(d, i, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(d.calls.spawn).toBe(1);
    expect(d.guestCount).toBe(0);
  });
});

describe('FakeDriver simulation', () => {
  it('persists guests to its state file so they outlive the driver object', async () => {
    const statePath = join(mkdtempSync(join(tmpdir(), 'nlfs-fake-')), 'state.json');
    const a = new FakeDriver({ statePath });
    const i = buildTestInstance();
    await a.spawn({
      instance: i,
      flavor: i.flavor,
      image: { id: 'x' } as never,
      images: {} as never,
      ports: [],
      volumes: [],
    });
    await a.pause(i);
    const b = new FakeDriver({ statePath });
    expect(await b.listInstances()).toEqual([
      { instanceId: i.id, powerState: 'paused', projectId: 'test-project' },
    ]);
  });

  it('fails the planned number of calls, only for matching instances', async () => {
    const d = new FakeDriver();
    const x = buildTestInstance();
    const y = buildTestInstance();
    d.failNext('destroy', { times: 2, when: (i) => i?.id === x.id });
    await expect(d.destroy(y)).resolves.toBeUndefined();
    await expect(d.destroy(x)).rejects.toMatchObject({ code: 'NLFS_DRIVER_ERROR' });
    await expect(d.destroy(x)).rejects.toMatchObject({ code: 'NLFS_DRIVER_ERROR' });
    await expect(d.destroy(x)).resolves.toBeUndefined();
  });

  it('classifies injected failures: retryable and reschedule as planned, unset by default', async () => {
    const d = new FakeDriver();
    const i = buildTestInstance();
    d.failNext('spawn', { times: 1, retryable: false, reschedule: false });
    const permanent = await spawnRequest(d, i).catch((e: unknown) => e);
    expect(permanent).toBeInstanceOf(DriverError);
    expect(permanent).toMatchObject({ retryable: false, reschedule: false });
    expect((permanent as DriverError).details).toMatchObject({ retryable: false, reschedule: false });
    d.failNext('spawn');
    const plain = (await spawnRequest(d, i).catch((e: unknown) => e)) as DriverError;
    expect(plain.details).not.toHaveProperty('reschedule');
    expect(plain).toMatchObject({ retryable: true, reschedule: true });
  });
});

describe('FakeDriver live migration to a fake of another process', () => {
  it("hands the guest over through the destination's hand-off directory, which adopts it on its next call", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nlfs-fake-handoff-'));
    const source = new FakeDriver({ statePath: join(dir, 'a.json') });
    const first = new FakeDriver({ statePath: join(dir, 'b.json') });
    const vm = buildTestInstance({ hostId: 'a' });
    const images = new LocalImageService(join(dir, 'images'));
    const image = await images.import(
      { id: 'img', name: 'img', diskFormat: 'raw' },
      { kind: 'bytes', bytes: new Uint8Array([1]) },
    );
    await source.spawn({ instance: vm, flavor: vm.flavor, image, images, ports: [], volumes: [] });
    const target = await first.prepareLiveMigrationTarget(vm);
    expect(target.params.handoffDir).toBe(join(dir, 'b.json.incoming'));
    // the destination's process goes; another one serves its state (the target's fake id is unknown here)
    await first.close();
    const dest = new FakeDriver({ statePath: join(dir, 'b.json') });
    await source.checkLiveMigration(vm, target);
    const result = await source.liveMigrate(vm, target);
    expect(result.postCopy).toBe(false);
    expect(source.hasGuest(vm.id)).toBe(false);
    // adopted on the destination's next call, and kept in its state file
    expect(await dest.getPowerState(vm)).toBe('running');
    expect((await dest.listInstances()).map((g) => g.instanceId)).toEqual([vm.id]);
    const restarted = new FakeDriver({ statePath: join(dir, 'b.json') });
    expect(restarted.hasGuest(vm.id)).toBe(true);
    // once nothing is incoming, the directory is not read: a hand-off no prepared migration expects is not adopted
    const stray = buildTestInstance({ hostId: 'a' });
    writeFileSync(
      join(dir, 'b.json.incoming', `${stray.id}.json`),
      JSON.stringify({ powerState: 'running' }),
    );
    expect(await dest.getPowerState(stray)).toBe('nostate');
    // a destination that was not prepared (or rolled back) is refused before anything moves
    const back = await source.prepareLiveMigrationTarget(vm);
    await source.rollbackLiveMigrationTarget(vm);
    await expect(dest.checkLiveMigration(vm, back)).rejects.toThrow(/not prepared/);
    // a fake is not its own destination, even under another process's fake id
    const self = await dest.prepareLiveMigrationTarget(vm);
    await expect(
      dest.checkLiveMigration(vm, { ...self, params: { ...self.params, fakeId: 'fake-elsewhere' } }),
    ).rejects.toThrow(/destination is the source/);
    await Promise.all([source.close(), dest.close(), restarted.close()]);
  });
});
