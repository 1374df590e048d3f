import { mkdtempSync } from 'node:fs';
import { readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Image, LocalImageService } from '@nova-lfs/core';
import { makeBusyboxRootfs } from '@nova-lfs/driver-docker/testing';
import { runCommand } from './command.js';
import { readTags } from './container-config.js';
import { instanceIdOf } from './names.js';
import { BASES_DIR } from './rootfs-cache.js';
import { lxcUnavailableReason } from './testing/index.js';

const reason = await lxcUnavailableReason();
/** LXC availability, decided once per test file. With CI=true a missing LXC is an error. */
export const available = reason === undefined;
if (reason) {
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping LXC driver tests: ${reason}`);
}

/** A fresh lxcpath for one test file (LXC's container directory), so tests see only their own containers. */
export function tempLxcPath(): string {
  return mkdtempSync(join(tmpdir(), 'nlfs-lxc-'));
}

/** An image service holding the busybox rootfs as image `busybox` (`tar`: the rootfs tarball's path). */
export async function busyboxImages(): Promise<{
  images: LocalImageService;
  image: Image;
  tar: string;
  dir: string;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'nlfs-lxc-img-'));
  const tar = join(dir, 'busybox.tar');
  await makeBusyboxRootfs(tar);
  const images = new LocalImageService(join(dir, 'images'));
  const image = await images.import(
    { id: 'busybox', name: 'busybox', diskFormat: 'tar', properties: { hypervisorType: 'lxc' } },
    { kind: 'file', path: tar },
  );
  return { images, image, tar, dir };
}

/**
 * Stops and removes every container of `hostId` in `lxcPath` (by the host tag in its config; no
 * other container is touched) and the overlay bases in it, then removes `lxcPath` if it is left
 * empty (test lxcpaths are the test's own). Returns how many went.
 */
export async function removeHostContainers(lxcPath: string, hostId: string): Promise<number> {
  let removed = 0;
  const entries = await readdir(lxcPath).catch(() => [] as string[]);
  for (const name of entries) {
    if (!instanceIdOf(name)) continue;
    const config = await readFile(join(lxcPath, name, 'config'), 'utf8').catch(() => '');
    if (readTags(config)?.hostId !== hostId) continue;
    await runCommand('lxc-unfreeze', ['-P', lxcPath, '-n', name], { timeoutMs: 30_000 }).catch(
      () => undefined,
    );
    await runCommand('lxc-stop', ['-P', lxcPath, '-n', name, '-k'], { timeoutMs: 30_000 }).catch(
      () => undefined,
    );
    await rm(join(lxcPath, name), { recursive: true, force: true });
    removed++;
  }
  await rm(join(lxcPath, BASES_DIR), { recursive: true, force: true }); // overlay bases of the test's images
  await rmdir(lxcPath).catch(() => undefined);
  return removed;
}
