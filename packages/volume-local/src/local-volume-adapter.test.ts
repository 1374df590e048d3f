import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode } from '@nova-lfs/core';
import { buildTestInstance } from '@nova-lfs/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalVolumeAdapter } from './local-volume-adapter.js';

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'nlfs-volumes-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('LocalVolumeAdapter (real files, real qemu-img)', () => {
  const volumes = new LocalVolumeAdapter(join(root, 'data'));

  it('creates a sparse raw file and a qcow2 image of the asked size', async () => {
    const raw = await volumes.create({ id: 'raw-1', sizeMiB: 16 });
    expect(statSync(raw.path).size).toBe(16 * 2 ** 20);
    expect(statSync(raw.path).blocks).toBeLessThan(64); // sparse
    const q = await volumes.create({ id: 'q-1', sizeMiB: 32, format: 'qcow2' });
    const { stdout } = await run('qemu-img', ['info', '--output=json', q.path]);
    expect(JSON.parse(stdout)).toMatchObject({ format: 'qcow2', 'virtual-size': 32 * 2 ** 20 });
    expect((await volumes.list()).map((v) => v.id)).toEqual(['q-1', 'raw-1']);
  });

  it('refuses bad input with typed errors naming the field, and a duplicate id', async () => {
    await expect(volumes.create({ id: '../etc', sizeMiB: 1 })).rejects.toMatchObject({
      code: ErrorCode.Validation,
      fields: ['id'],
    });
    await expect(volumes.create({ id: 'ok', sizeMiB: 0 })).rejects.toMatchObject({ fields: ['sizeMiB'] });
    await expect(volumes.create({ id: 'ok', sizeMiB: 1, format: 'vmdk' as never })).rejects.toMatchObject({
      fields: ['format'],
    });
    await expect(volumes.create({ id: 'raw-1', sizeMiB: 1 })).rejects.toMatchObject({
      code: ErrorCode.Duplicate,
    });
    expect(existsSync(join(root, 'data', 'ok.raw'))).toBe(false);
  });

  it('connects volumes to one instance at a time, idempotently, and disconnects them', async () => {
    const a = buildTestInstance();
    const b = buildTestInstance();
    const [dev] = await volumes.connect(a, 'h', [{ volumeId: 'raw-1', device: 'vdb' }]);
    expect(dev).toEqual({
      volumeId: 'raw-1',
      device: 'vdb',
      connection: { type: 'file', path: join(root, 'data', 'raw-1.raw'), format: 'raw' },
    });
    expect(await volumes.connect(a, 'h', [{ volumeId: 'raw-1' }])).toEqual([dev]);
    await expect(volumes.connect(b, 'h', [{ volumeId: 'raw-1' }])).rejects.toMatchObject({
      code: ErrorCode.Validation,
      fields: ['volumeId'],
    });
    await expect(volumes.connect(b, 'h', [{ volumeId: 'missing' }])).rejects.toMatchObject({
      code: ErrorCode.NotFound,
      details: { field: 'volumeId' },
    });
    await expect(volumes.delete('raw-1')).rejects.toMatchObject({ fields: ['volumeId'] });
    await volumes.disconnect(a, 'h');
    await volumes.disconnect(a, 'h');
    expect((await volumes.get('raw-1')).attachedTo).toBeUndefined();
    await volumes.connect(b, 'h', [{ volumeId: 'raw-1' }, { volumeId: 'q-1' }]);
    // a detach disconnects only the volumes it names
    await volumes.disconnect(b, 'h', ['q-1']);
    expect((await volumes.get('q-1')).attachedTo).toBeUndefined();
    expect((await volumes.get('raw-1')).attachedTo).toBe(b.id);
    await volumes.disconnect(b, 'h');
    await volumes.delete('raw-1');
    await volumes.delete('raw-1');
    expect(existsSync(join(root, 'data', 'raw-1.raw'))).toBe(false);
    await expect(volumes.get('raw-1')).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });
});
