import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { parseConfig } from './container-config.js';
import { unpackRootfs } from './rootfs.js';

/** Directory under the lxcpath holding unpacked image bases (hidden: `lxc-ls` ignores it). */
export const BASES_DIR = '.nova-lfs-bases';

/**
 * Unpacked image rootfs trees shared read-only by overlay containers, one per image sha256, in
 * `<lxcPath>/.nova-lfs-bases/<sha256>`. Each is unpacked once (into a temporary directory renamed
 * into place, so a half-unpacked base is never used, also across processes); concurrent requests
 * in this process share one unpack. Bases are never changed: containers write to their own overlay
 * upper directory. {@link RootfsCache.prune} removes those no container config refers to.
 */
export class RootfsCache {
  private readonly unpacking = new Map<string, Promise<string>>();

  constructor(
    private readonly lxcPath: string,
    private readonly timeoutMs: number,
  ) {}

  /** Directory of the bases. */
  get root(): string {
    return join(this.lxcPath, BASES_DIR);
  }

  /**
   * The base directory of an image, unpacking `tarball` first if needed. The unpack is not cut
   * by one caller leaving (others may wait for it; it is cached for the next spawn either way).
   */
  ensure(sha256: string, tarball: string): Promise<string> {
    const existing = this.unpacking.get(sha256);
    if (existing) return existing;
    const work = this.unpack(sha256, tarball).finally(() => this.unpacking.delete(sha256));
    this.unpacking.set(sha256, work);
    return work;
  }

  private async unpack(sha256: string, tarball: string): Promise<string> {
    const base = join(this.root, sha256);
    const exists = await stat(base).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      const tmp = join(this.root, `.tmp-${sha256}-${randomUUID()}`);
      try {
        await unpackRootfs(tarball, tmp, { timeoutMs: this.timeoutMs });
        try {
          await rename(tmp, base);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e; // else another process won
        }
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    }
    const now = new Date();
    await utimes(base, now, now); // used now: prune keeps it (tar set the archive's own mtime)
    return base;
  }

  /**
   * Removes the bases that no container in the lxcpath (of any host) uses and that were not used
   * for `minAgeMs` (so a spawn between unpacking its base and writing its config keeps it).
   * Returns the sha256 of each removed base.
   */
  async prune(minAgeMs = 10 * 60_000): Promise<string[]> {
    const used = new Set<string>();
    for (const entry of await readdir(this.lxcPath).catch(() => [] as string[])) {
      const text = await readFile(join(this.lxcPath, entry, 'config'), 'utf8').catch(() => '');
      for (const [key, value] of parseConfig(text)) {
        if (key !== 'lxc.rootfs.path' || !value.startsWith('overlay:')) continue;
        const lower = value.slice('overlay:'.length).split(':')[0] ?? '';
        if (lower.startsWith(`${this.root}/`)) used.add(lower.slice(this.root.length + 1));
      }
    }
    const removed: string[] = [];
    for (const sha of await readdir(this.root).catch(() => [] as string[])) {
      if (used.has(sha) || this.unpacking.has(sha) || sha.startsWith('.')) continue;
      const info = await stat(join(this.root, sha)).catch(() => undefined);
      if (!info || Date.now() - info.mtimeMs < minAgeMs) continue;
      await rm(join(this.root, sha), { recursive: true, force: true });
      removed.push(sha);
    }
    return removed;
  }
}
