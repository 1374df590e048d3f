import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Builds a tiny, reproducible root filesystem tar from Debian's busybox-static (`/bin/busybox`):
 * the busybox binary, a symlink per applet, `/etc/passwd`, `/tmp`. Importable with the Engine
 * API's image import. Same bytes (and sha256) on every run with the same busybox.
 */
export async function makeBusyboxRootfs(outPath: string, busybox = '/bin/busybox'): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'nlfs-rootfs-'));
  try {
    const root = join(work, 'root');
    for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root'])
      await mkdir(join(root, d), { recursive: true });
    await copyFile(busybox, join(root, 'bin', 'busybox'));
    await chmod(join(root, 'bin', 'busybox'), 0o755);
    const { stdout } = await run(busybox, ['--list']);
    for (const applet of stdout.split('\n').filter((a) => a && a !== 'busybox')) {
      await symlink('busybox', join(root, 'bin', applet));
    }
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await writeFile(join(root, 'etc', 'group'), 'root:x:0:\n');
    await chmod(join(root, 'tmp'), 0o1777);
    await run('tar', [
      '--sort=name',
      '--mtime=2024-01-01 00:00:00Z',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '-C',
      root,
      '-cf',
      outPath,
      '.',
    ]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
