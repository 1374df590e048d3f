export { freeLoopbackPort as freePort } from '@nova-lfs/bus-nats/testing';

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export { type ServeProcess, startServe } from '../testing/serve-process.js';

const run = promisify(execFile);

/** Result of one client command. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a client (`/usr/bin/openstack`, `/usr/bin/nova`) with `env`; never throws on a non-zero exit. */
export async function cli(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(command, [...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
      timeout: 180_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : 1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? String(e),
    };
  }
}
