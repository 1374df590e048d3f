import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Creates a qcow2 overlay backed by a (read-only, cached) base image with `qemu-img`, run with an
 * argument vector (no shell). When `signal` aborts, `qemu-img` is killed and the call rejects with
 * the signal's reason (the caller removes the partial overlay).
 */
export async function createOverlay(
  base: string,
  baseFormat: 'qcow2' | 'raw',
  overlay: string,
  signal?: AbortSignal,
): Promise<void> {
  try {
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', baseFormat, '-b', base, overlay], {
      ...(signal ? { signal } : {}),
    });
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw e;
  }
}

/**
 * Points an overlay at another copy of the same base image (`qemu-img rebase -u`: only the
 * header changes, the data is not read). Used when a disk moves to a host whose image cache holds
 * the base elsewhere; the caller guarantees the new base has the same content (same sha256).
 */
export async function rebaseOverlay(
  overlay: string,
  base: string,
  baseFormat: 'qcow2' | 'raw',
): Promise<void> {
  await run('qemu-img', ['rebase', '-q', '-u', '-F', baseFormat, '-b', base, overlay]);
}

/**
 * Writes a standalone qcow2 copy of a disk and its whole backing chain (`qemu-img convert -O
 * qcow2`: the overlay's data merged with its base, no backing file left). `forceShare` (`-U`) reads
 * an image a QEMU process holds open: only safe while that guest is paused (QEMU flushed its
 * writes when it stopped) or off. When `signal` aborts, `qemu-img` is killed and the call rejects
 * with the signal's reason (the caller removes the partial output).
 */
export async function convertToStandaloneQcow2(
  source: string,
  output: string,
  options: { forceShare?: boolean; signal?: AbortSignal | undefined } = {},
): Promise<void> {
  const { signal } = options;
  const args = ['convert', '-q', ...(options.forceShare ? ['-U'] : []), '-O', 'qcow2', source, output];
  try {
    await run('qemu-img', args, { ...(signal ? { signal } : {}) });
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw e;
  }
}
