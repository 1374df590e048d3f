import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Creates a qcow2 overlay backed by a (read-only, cached) base image with `qemu-img`, run with an
 * argument vector (no shell).
 */
export async function createOverlay(
  base: string,
  baseFormat: 'qcow2' | 'raw',
  overlay: string,
): Promise<void> {
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', baseFormat, '-b', base, overlay]);
}
