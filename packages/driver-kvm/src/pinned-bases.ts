import { randomUUID } from 'node:crypto';
import { copyFile, link, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/**
 * The driver's own copies of the base images its qcow2 overlays back onto, under
 * `<stateDir>/_base/<sha256>` (Nova's `_base`). The image service's cached bytes go when the image
 * is removed (an unshelve removes its snapshot image once the guest runs); an overlay backed onto
 * them directly would then fail at the guest's next start. A pin is a hard link to the cached
 * bytes (no space of its own while the image stays in the service), or a copy across
 * filesystems. Pins are content-addressed and read-only, shared by every driver with this
 * state directory.
 */
export class PinnedBases {
  /** Pins being made or used by a spawn of this process right now, by sha256: never pruned. */
  private readonly busy = new Map<string, number>();

  /** @param stateDir the drivers' state directory; instance directories are `<stateDir>/<hostId>/<id>`. */
  constructor(private readonly stateDir: string) {}

  /** Directory of the pins. */
  get dir(): string {
    return join(this.stateDir, '_base');
  }

  /**
   * Runs `fn` with the pinned path of a cached image (`blob`, bytes with this `sha256`), made if
   * missing; the pin is not pruned while `fn` runs (it creates or rebases the overlay on it).
   */
  async with<T>(blob: string, sha256: string, fn: (pinned: string) => Promise<T>): Promise<T> {
    this.busy.set(sha256, (this.busy.get(sha256) ?? 0) + 1);
    try {
      return await fn(await this.pin(blob, sha256));
    } finally {
      const n = (this.busy.get(sha256) ?? 1) - 1;
      if (n > 0) this.busy.set(sha256, n);
      else this.busy.delete(sha256);
    }
  }

  /**
   * Removes the pins whose image is no longer in the service's cache (link count 1: only the pin
   * holds the bytes) and that no qcow2 file in an instance directory under the state directory
   * (disk, rescue disk, a resize's kept copy) backs onto. Resolves the sha256 of each removed.
   */
  async prune(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const candidates: string[] = [];
    for (const name of names) {
      if (!/^[0-9a-f]{64}$/.test(name) || this.busy.has(name)) continue;
      const s = await stat(join(this.dir, name)).catch(() => undefined);
      if (s && s.nlink <= 1) candidates.push(name);
    }
    if (!candidates.length) return [];
    const used = await this.backingFiles();
    const removed: string[] = [];
    for (const name of candidates) {
      const path = join(this.dir, name);
      if (used.has(path) || this.busy.has(name)) continue;
      await rm(path, { force: true });
      removed.push(name);
    }
    return removed;
  }

  private async pin(blob: string, sha256: string): Promise<string> {
    const pinned = join(this.dir, sha256);
    if (await stat(pinned).catch(() => undefined)) return pinned;
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    await placeLink(blob, pinned);
    return pinned;
  }

  /** Absolute backing-file paths of the qcow2 files in every instance directory under the state directory. */
  private async backingFiles(): Promise<Set<string>> {
    const used = new Set<string>();
    const hosts = await readdir(this.stateDir, { withFileTypes: true }).catch(() => []);
    for (const host of hosts) {
      // `_base` itself holds only files (pins); a host named `_base` would keep its instances there
      if (!host.isDirectory()) continue;
      const hostDir = join(this.stateDir, host.name);
      for (const inst of await readdir(hostDir, { withFileTypes: true }).catch(() => [])) {
        if (!inst.isDirectory()) continue;
        const dir = join(hostDir, inst.name);
        for (const f of await readdir(dir).catch(() => [])) {
          if (!f.endsWith('.qcow2')) continue;
          const backing = await qcow2BackingFile(join(dir, f));
          if (backing) used.add(resolve(dir, backing));
        }
      }
    }
    return used;
  }
}

/**
 * The backing file name in a qcow2 header (`backing_file_offset` at byte 8, `backing_file_size` at
 * byte 16, big-endian), or `undefined` for a standalone image or a file that is not qcow2.
 */
export async function qcow2BackingFile(path: string): Promise<string | undefined> {
  const file = await open(path, 'r').catch(() => undefined);
  if (!file) return undefined;
  try {
    const header = Buffer.alloc(20);
    const { bytesRead } = await file.read(header, 0, 20, 0);
    if (bytesRead < 20 || header.readUInt32BE(0) !== 0x514649fb) return undefined; // "QFI\xfb"
    const offset = Number(header.readBigUInt64BE(8));
    const size = header.readUInt32BE(16);
    if (!offset || !size || size > 4096) return undefined;
    const name = Buffer.alloc(size);
    await file.read(name, 0, size, offset);
    return name.toString('utf8');
  } finally {
    await file.close();
  }
}

/**
 * The instance's own link to a kernel or initramfs it boots directly, `<dir>/boot-<sha256>`: the
 * domain XML names this file, not the image service's cached bytes, so removing the image from the
 * service does not break the guest's next start (Nova keeps its own copies of them too). A hard
 * link (no space of its own while the image stays), or a copy across filesystems; it goes with
 * the instance directory, and a live migration on shared storage links it over as it does disks.
 */
export async function keepBootFile(blob: string, sha256: string, dir: string): Promise<string> {
  const kept = join(dir, `boot-${sha256}`);
  if (await stat(kept).catch(() => undefined)) return kept;
  await placeLink(blob, kept);
  return kept;
}

/** Places `blob` at `dest` as a hard link (a copy across filesystems), atomically: a concurrent call ends the same. */
async function placeLink(blob: string, dest: string): Promise<void> {
  const tmp = `${dest}.${randomUUID()}.tmp`;
  try {
    await link(blob, tmp).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EXDEV' && e.code !== 'EPERM') throw e;
      await copyFile(blob, tmp);
    });
    await rename(tmp, dest);
  } finally {
    await rm(tmp, { force: true });
  }
}
