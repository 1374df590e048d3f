import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pgUrl } from '../sql-env.test-helper.js';

/** Path of the worker script run by the harness. */
export const workerPath = fileURLToPath(new URL('./engine-worker.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../..', import.meta.url));

/** Path of the worker that acknowledges writes one by one (durability of acknowledged writes). */
export const ackWorkerPath = fileURLToPath(new URL('./ack-worker.ts', import.meta.url));

/**
 * Starts a worker (default the engine worker) with `$NOVA_LFS_PG_URL` set to the tests' server and
 * resolves once it printed `ready` (the engine finished reconciling).
 */
export function startWorker(
  args: readonly string[],
  script: string = workerPath,
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(
    process.execPath,
    ['--conditions=@nova-lfs/source', '--import', 'tsx', script, ...args],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      // the server the tests use (store-sql has no default server)
      env: { ...process.env, NOVA_LFS_PG_URL: pgUrl },
    },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`worker not ready in 60 s: ${err.slice(-2000)}`));
    }, 60_000);
    const check = () => {
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        resolve({ child, output: () => out });
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      if (!out.includes('ready\n')) {
        clearTimeout(timer);
        reject(new Error(`worker exited (${code}) before ready: ${err.slice(-2000)}`));
      }
    });
  });
}

/** Waits for a child to exit. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

/** A repeatable pseudo-random sequence in [0, 1) (Park–Miller), for kill timings. */
export function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 48_271) % 2_147_483_647;
    return state / 2_147_483_647;
  };
}
