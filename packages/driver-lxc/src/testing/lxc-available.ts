import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Why LXC cannot run containers here, or undefined when it can (tools present, running as root). */
export async function lxcUnavailableReason(): Promise<string | undefined> {
  try {
    await run('lxc-start', ['--version'], { timeout: 10_000 });
  } catch {
    return `the lxc-* tools are not installed; install them with: ${installLxcCommand}`;
  }
  if (process.getuid?.() !== 0)
    return 'the LXC driver tests create privileged containers and must run as root';
  return undefined;
}

/** Whether LXC can run containers here; used by tests to skip (or, with CI=true, fail) clearly. */
export async function lxcAvailable(): Promise<boolean> {
  return (await lxcUnavailableReason()) === undefined;
}

/** The command that installs LXC here (printed when tests skip). */
export const installLxcCommand = 'bash scripts/install-system.sh   # Debian package lxc';
