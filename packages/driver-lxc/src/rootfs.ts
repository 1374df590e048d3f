import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { runCommand } from './command.js';
import { LxcCommandError } from './errors.js';

/**
 * Unpacks a rootfs tarball (plain, or gzip/xz/zstd: GNU tar detects it) into `dir`, keeping
 * numeric owners and modes (a system container's files belong to its own root). GNU tar strips
 * leading `/` and refuses members with `..`, so an archive cannot write outside `dir`.
 * @throws the signal's reason when it aborts (tar is killed); LxcCommandError when tar fails.
 */
export async function unpackRootfs(
  tarball: string,
  dir: string,
  options: { signal?: AbortSignal | undefined; timeoutMs: number },
): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await runCommand(
    'tar',
    ['--extract', '--file', tarball, '--directory', dir, '--numeric-owner', '--same-permissions'],
    options,
  );
}

/**
 * Streams `dir` as a tar archive (numeric owners, sorted names, one file system: mounts below it
 * are not followed). The stream fails with an `LxcCommandError` when tar exits non-zero; tar is
 * killed when the signal aborts or the stream is destroyed.
 */
export function packRootfs(dir: string, signal?: AbortSignal): Readable {
  const out = new PassThrough();
  const child = spawn(
    'tar',
    [
      '--create',
      '--file',
      '-',
      '--directory',
      dir,
      '--numeric-owner',
      '--sort=name',
      '--one-file-system',
      '.',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal, killSignal: 'SIGKILL' as const } : {}) },
  );
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
  });
  child.stdout.pipe(out, { end: false });
  child.on('error', (e) => out.destroy(signal?.aborted ? signal.reason : e));
  child.on('close', (code, sig) => {
    // 1: a file changed while it was read (a running container): the archive is still whole
    if (code === 0 || code === 1) out.end();
    else if (!out.destroyed)
      out.destroy(
        signal?.aborted
          ? signal.reason
          : new LxcCommandError({
              command: 'tar',
              args: ['--create', dir],
              ...(code !== null ? { exitCode: code } : {}),
              ...(sig ? { signal: sig } : {}),
              stderr: stderr.trim(),
              timedOut: false,
            }),
      );
  });
  out.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return out;
}
