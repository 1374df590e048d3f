import { execFile } from 'node:child_process';
import { LxcCommandError } from './errors.js';

/** Options of {@link runCommand}. */
export interface RunOptions {
  /** Cuts the run: the child is killed (SIGKILL) and the call rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
  /** Kills the child after this many ms and rejects with an `LxcCommandError` (`timedOut`). */
  readonly timeoutMs: number;
  /** Exit codes that count as success besides 0 (e.g. `lxc-stop` of a stopped container). */
  readonly okExitCodes?: readonly number[];
}

/** What a finished run printed. */
export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** Keeps the last lines of a tool's standard error for an error message. */
function tail(text: string, lines = 6): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * Runs a program with an argument vector (no shell: nothing is ever parsed by one), waiting for
 * its exit. The signal and the timeout kill it with SIGKILL; the promise settles only once the
 * child has exited (never on a process merely vanishing from the table).
 * @throws the signal's reason when it aborts; LxcCommandError for a non-zero exit, a kill or a timeout.
 */
export function runCommand(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<RunResult>((resolve, reject) => {
    execFile(
      file,
      args,
      {
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 2 ** 20,
        encoding: 'utf8',
        env: { ...process.env, LANG: 'C', LC_ALL: 'C' },
        ...(signal ? { signal } : {}),
      },
      (error, stdout, stderr) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        if (!error) {
          resolve({ stdout, stderr, exitCode: 0 });
          return;
        }
        const e = error as NodeJS.ErrnoException & {
          code?: unknown;
          killed?: boolean;
          signal?: string | null;
        };
        const exitCode = typeof e.code === 'number' ? e.code : undefined;
        if (exitCode !== undefined && options.okExitCodes?.includes(exitCode)) {
          resolve({ stdout, stderr, exitCode });
          return;
        }
        reject(
          new LxcCommandError(
            {
              command: file.split('/').pop() ?? file,
              args,
              ...(exitCode !== undefined ? { exitCode } : {}),
              ...(e.signal ? { signal: e.signal } : {}),
              stderr: tail(stderr || (typeof e.code === 'string' ? e.message : '')),
              timedOut: e.killed === true && e.signal === 'SIGKILL' && exitCode === undefined,
            },
            { cause: error },
          ),
        );
      },
    );
  });
}
