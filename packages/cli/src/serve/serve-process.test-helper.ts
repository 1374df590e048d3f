export { freeLoopbackPort as freePort } from '@nova-lfs/bus-nats/testing';

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

/** A `nova-lfs serve` child process, started from the sources as `pnpm nova-lfs serve` does. */
export interface ServeProcess {
  readonly url: string;
  /** Everything it printed so far. */
  output(): string;
  /** Ctrl-C: resolves with its exit code once it stopped. */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash: nothing is released); resolves once it exited. */
  kill(): Promise<void>;
}

/** Starts `nova-lfs serve` with `args` and waits until it listens (or fails after 60 s). */
export async function startServe(args: readonly string[], port: number): Promise<ServeProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--conditions=@nova-lfs/source',
      '--import',
      'tsx',
      'packages/cli/src/main.ts',
      'serve',
      '--listen',
      `127.0.0.1:${port}`,
      ...args,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nova-lfs serve did not start:\n${out}`)), 60_000);
    const check = () => {
      if (out.includes('OS_PROJECT_DOMAIN_NAME')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`nova-lfs serve exited with ${code}:\n${out}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    stop: async () => {
      if (!gone()) child.kill('SIGINT');
      return exited;
    },
    kill: async () => {
      if (!gone()) child.kill('SIGKILL');
      await exited;
    },
  };
}

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
