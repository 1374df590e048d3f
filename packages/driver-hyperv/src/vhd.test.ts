import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fixedVhdFooter, vhdDataBytes, vhdGeometry } from './vhd.js';

const run = promisify(execFile);
const qemuImg = await run('qemu-img', ['--version']).then(
  () => true,
  () => false,
);
if (!qemuImg && process.env.CI === 'true')
  throw new Error('CI=true and qemu-img is missing (bash scripts/install-system.sh)');

describe('fixed VHD footer', () => {
  it('pads raw sizes to 1 MiB and is deterministic with a valid checksum', () => {
    expect(vhdDataBytes(1)).toBe(2 ** 20);
    expect(vhdDataBytes(1.5 * 2 ** 20)).toBe(2 * 2 ** 20);
    const a = fixedVhdFooter(2 ** 20, 'seed');
    expect(a.equals(fixedVhdFooter(2 ** 20, 'seed'))).toBe(true);
    expect(a.subarray(0, 8).toString('ascii')).toBe('conectix');
    const copy = Buffer.from(a);
    copy.writeUInt32BE(0, 64);
    let sum = 0;
    for (const b of copy) sum += b;
    expect(a.readUInt32BE(64)).toBe(~sum >>> 0);
    expect(() => fixedVhdFooter(1000, 's')).toThrow(RangeError);
  });

  it('uses the VHD specification geometry (its appendix algorithm) for small and large disks', () => {
    expect(vhdGeometry(2 ** 20)).toEqual({ cylinders: 30, heads: 4, sectorsPerTrack: 17 });
    expect(vhdGeometry(127 * 2 ** 30).sectorsPerTrack).toBe(255);
  });

  it.skipIf(!qemuImg)(
    'qemu-img reads the file as a vpc image of that size, like its own fixed VHD, whose data is the raw bytes',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'nlfs-vhd-'));
      try {
        const raw = Buffer.alloc(3 * 2 ** 20 + 5);
        for (let i = 0; i < raw.length; i++) raw[i] = (i * 7) & 0xff;
        const size = vhdDataBytes(raw.length);
        const vhd = join(dir, 'd.vhd');
        await writeFile(
          vhd,
          Buffer.concat([raw, Buffer.alloc(size - raw.length), fixedVhdFooter(size, 'x')]),
        );
        // a fixed VHD has its footer at the end only, so qemu-img probes it as raw: name the format
        const info = JSON.parse((await run('qemu-img', ['info', '-f', 'vpc', '--output=json', vhd])).stdout);
        expect(info.format).toBe('vpc');
        // qemu takes the size from the CHS geometry for creators it does not know (Hyper-V, which
        // reads current_size, is one it knows as 'win '): the geometry covers at most the data
        expect(info['virtual-size']).toBeLessThanOrEqual(size);
        // qemu-img's own fixed VHD of exactly that size (force_size) has the same cookie, data
        // offset, sizes and disk type (its geometry is the 65535/16/255 marker for 'use the size')
        const theirs = join(dir, 'q.vhd');
        await run('qemu-img', [
          'create',
          '-q',
          '-f',
          'vpc',
          '-o',
          'subformat=fixed,force_size=on',
          theirs,
          String(size),
        ]);
        const q = await readFile(theirs);
        const qf = q.subarray(q.length - 512);
        const mine = fixedVhdFooter(size, 'x');
        for (const [at, len] of [
          [0, 8],
          [16, 8],
          [40, 8],
          [48, 8],
          [60, 4],
        ] as const)
          expect(mine.subarray(at, at + len).toString('hex')).toBe(qf.subarray(at, at + len).toString('hex'));
        await run('qemu-img', ['convert', '-f', 'vpc', '-O', 'raw', vhd, join(dir, 'out.raw')]);
        const out = await readFile(join(dir, 'out.raw'));
        expect(out.subarray(0, Math.min(raw.length, out.length)).equals(raw.subarray(0, out.length))).toBe(
          true,
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
