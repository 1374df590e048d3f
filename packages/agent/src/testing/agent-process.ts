import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AgentDriverKind } from '../agent-command.js';

/** What a started agent printed when it was ready (`{"event":"agent.ready",...}`). */
export interface AgentReady {
  readonly hostId: string;
  readonly driver: string;
  readonly pid: number;
  readonly bootId: string;
  /** Instance ids of the guests it re-attached to at start. */
  readonly recovered: readonly string[];
  readonly heartbeating: boolean;
}

/** Options of {@link startAgentProcess}: the agent's command-line arguments, as options. */
export interface AgentProcessOptions {
  readonly hostId: string;
  readonly driver?: AgentDriverKind;
  readonly natsUrl: string;
  readonly stateDir: string;
  readonly heartbeatMs?: number;
  readonly natsUser?: string;
  readonly natsPassword?: string;
  /** More arguments (e.g. `--fake-acquire-images`). */
  readonly extraArgs?: readonly string[];
  /** Time to wait for the ready line, in ms (default 20,000). */
  readonly readyTimeoutMs?: number;
}

/** An agent child process. */
export interface AgentProcess {
  readonly ready: AgentReady;
  readonly pid: number;
  /** Everything it wrote on stderr so far (refusals, warnings). */
  stderr(): string;
  /** Resolves with the exit code (or the signal's name) once the child exited. */
  readonly exited: Promise<number | string>;
  /** SIGKILL: a crash (no deregistration, heartbeats just stop). Resolves once it exited. */
  kill(): Promise<void>;
  /** SIGTERM: a clean stop (deregisters its heartbeat). Resolves once it exited. */
  stop(): Promise<void>;
}

const mainTs = fileURLToPath(new URL('../main.ts', import.meta.url));
const mainJs = fileURLToPath(new URL('../main.js', import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');

/** The command that runs `nova-lfs-agent` from this checkout (sources with tsx, or the build). */
export function agentCommand(): { command: string; args: string[] } {
  return fromSource
    ? { command: process.execPath, args: ['--conditions=@nova-lfs/source', '--import', 'tsx', mainTs] }
    : { command: process.execPath, args: [mainJs] };
}

/**
 * Starts `nova-lfs-agent` as a child process and waits for its ready line.
 * @throws Error with its stderr when it exits or does not get ready in time (the child is killed)
 */
export async function startAgentProcess(options: AgentProcessOptions): Promise<AgentProcess> {
  const { command, args } = agentCommand();
  const argv = [
    ...args,
    '--host-id',
    options.hostId,
    '--driver',
    options.driver ?? 'fake',
    '--nats-url',
    options.natsUrl,
    '--state-dir',
    options.stateDir,
    '--heartbeat-ms',
    String(options.heartbeatMs ?? 10_000),
    ...(options.natsUser !== undefined ? ['--nats-user', options.natsUser] : []),
    ...(options.extraArgs ?? []),
  ];
  const child: ChildProcess = spawn(command, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...(options.natsPassword !== undefined ? { NOVA_LFS_NATS_PASSWORD: options.natsPassword } : {}),
    },
  });
  let stderr = '';
  let stdout = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const ready = await new Promise<AgentReady>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `agent ${options.hostId} not ready within ${options.readyTimeoutMs ?? 20_000} ms; stderr:\n${stderr}`,
        ),
      );
    }, options.readyTimeoutMs ?? 20_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const line = stdout.split('\n').find((l) => l.includes('"agent.ready"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as AgentReady);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`agent ${options.hostId} exited (${code}) before it was ready; stderr:\n${stderr}`));
    });
  });
  const signal = async (s: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(s);
    await exited;
  };
  return {
    ready,
    pid: child.pid ?? -1,
    stderr: () => stderr,
    exited,
    kill: () => signal('SIGKILL'),
    stop: () => signal('SIGTERM'),
  };
}
