import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalImageService } from '../image/local-image-service.js';
import { describeDriverConformance } from './driver-conformance.js';
import { FakeDriver } from './fake-driver.js';
import { buildTestInstance } from './test-instance.js';

describeDriverConformance('FakeDriver', async () => {
  const images = new LocalImageService(mkdtempSync(join(tmpdir(), 'nlfs-fake-')));
  const image = await images.import(
    { id: 'img', name: 'img', diskFormat: 'raw' },
    { kind: 'bytes', bytes: new Uint8Array([1]) },
  );
  return { driver: new FakeDriver(), image, images };
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
});
