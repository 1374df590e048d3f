import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PinnedBases, qcow2BackingFile } from './pinned-bases.js';
import { createOverlay } from './qemu-img.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

describe('PinnedBases (real files, real qemu-img)', () => {
  let root: string;
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const setup = () => {
    root = mkdtempSync(join(tmpdir(), 'nlfs-pins-'));
    const cache = join(root, 'blobs');
    mkdirSync(cache);
    for (const s of [A, B, C]) writeFileSync(join(cache, s), Buffer.alloc(65536, s[0]));
    return { cache, pins: new PinnedBases(join(root, 'state')) };
  };

  it('pins a cached blob as a hard link; prunes only pins the cache dropped that no overlay backs onto', async () => {
    const { cache, pins } = setup();
    const inst = join(root, 'state', 'host-1', 'inst-1');
    mkdirSync(inst, { recursive: true });
    const pinnedA = await pins.with(join(cache, A), A, async (base) => {
      await createOverlay(base, 'raw', join(inst, 'disk.qcow2'));
      return base;
    });
    expect(pinnedA).toBe(join(pins.dir, A));
    expect(statSync(pinnedA).ino).toBe(statSync(join(cache, A)).ino);
    expect(await qcow2BackingFile(join(inst, 'disk.qcow2'))).toBe(pinnedA);
    await pins.with(join(cache, B), B, async () => undefined); // pinned, no overlay
    await pins.with(join(cache, C), C, async () => undefined); // pinned, still in the cache
    expect(await pins.with(join(cache, C), C, async (p) => p)).toBe(join(pins.dir, C)); // idempotent

    rmSync(join(cache, A));
    rmSync(join(cache, B));
    expect(await pins.prune()).toEqual([B]); // A backs an overlay, C is still cached
    expect(existsSync(pinnedA)).toBe(true);
    rmSync(inst, { recursive: true });
    expect(await pins.prune()).toEqual([A]);
    expect(existsSync(join(pins.dir, C))).toBe(true);
  });

  it('does not prune a pin while a spawn holds it', async () => {
    const { cache, pins } = setup();
    let pruned: string[] = [];
    await pins.with(join(cache, A), A, async () => {
      rmSync(join(cache, A));
      pruned = await pins.prune();
    });
    expect(pruned).toEqual([]);
    expect(await pins.prune()).toEqual([A]);
  });

  it('reads no backing file from a standalone qcow2 or a file that is not qcow2', async () => {
    const { cache } = setup();
    expect(await qcow2BackingFile(join(cache, A))).toBeUndefined();
    expect(await qcow2BackingFile(join(root, 'missing.qcow2'))).toBeUndefined();
  });
});
