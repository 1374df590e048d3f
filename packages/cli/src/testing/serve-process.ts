import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A `nova-lfs serve` child process, started from this checkout as `pnpm nova-lfs serve` does. */
export interface ServeProcess {
  readonly url: string;
  /** The child's process id (to read its CPU time). */
  readonly pid: number;
  /** Everything it printed so far. */
  output(): string;
  /** Ctrl-C: resolves with its exit code once it stopped. */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash: nothing is released); resolves once it exited. */
  kill(): Promise<void>;
}

const mainTs = fileURLToPath(new URL('../main.ts', import.meta.url));
const mainJs = fileURLToPath(new URL('../main.js', import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');
/** The checkout's root (`--import tsx` is resolved from the working directory). */
const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

/** The command that runs `nova-lfs` from this checkout (sources with tsx, or the build). */
export function serveCommand(): { command: string; args: string[] } {
  return fromSource
    ? { command: process.execPath, args: ['--conditions=@nova-lfs/source', '--import', 'tsx', mainTs] }
    : { command: process.execPath, args: [mainJs] };
}

/**
 * Starts `nova-lfs serve --listen 127.0.0.1:PORT` with `args` and waits until it listens (it
 * printed its OS_* variables).
 * @throws Error with what it printed when it exits first or is not listening within `readyTimeoutMs` (default 60 s)
 */
export async function startServe(
  args: readonly string[],
  port: number,
  readyTimeoutMs = 60_000,
): Promise<ServeProcess> {
  const { command, args: prefix } = serveCommand();
  const child: ChildProcess = spawn(command, [...prefix, 'serve', '--listen', `127.0.0.1:${port}`, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nova-lfs serve did not start within ${readyTimeoutMs} ms:\n${out}`));
    }, readyTimeoutMs);
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
    pid: child.pid ?? -1,
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

/** What {@link controlPlaneArgs} builds a `serve --store postgres --bus nats` command line from. */
export interface ControlPlaneArgsOptions {
  /** Data directory, shared by the control planes of one machine (image cache, admin password). */
  readonly dataDir: string;
  readonly adminPassword: string;
  readonly pgUrl: string;
  /** The engine's PostgreSQL schema (the API's is `<schema>_api`). */
  readonly pgSchema: string;
  readonly natsUrl: string;
  /** `--agent-host` ids (none: the control plane discovers the agents by their heartbeats). */
  readonly agentHosts: readonly string[];
  /** `--host-down-after-ms`. */
  readonly hostDownAfterMs: number;
  /** `--log-level` (default warn). */
  readonly logLevel?: string;
  /** More `serve` arguments (lease times, deadlines). */
  readonly extraArgs?: readonly string[];
}

/**
 * The `serve` arguments of one distributed control plane on a shared PostgreSQL schema and NATS
 * (without `--listen`), with the per-caller rate limit off: a test's or benchmark's burst of
 * concurrent requests must not meet it.
 */
export function controlPlaneArgs(o: ControlPlaneArgsOptions): string[] {
  return [
    '--data-dir',
    o.dataDir,
    '--admin-password',
    o.adminPassword,
    '--store',
    'postgres',
    '--pg-url',
    o.pgUrl,
    '--pg-schema',
    o.pgSchema,
    '--bus',
    'nats',
    '--nats-url',
    o.natsUrl,
    ...o.agentHosts.flatMap((h) => ['--agent-host', h]),
    '--host-down-after-ms',
    String(o.hostDownAfterMs),
    '--log-level',
    o.logLevel ?? 'warn',
    '--rate-limit',
    '0',
    ...(o.extraArgs ?? []),
  ];
}

/** An admin token of a running `serve` and the admin project's id. */
export interface AdminToken {
  readonly token: string;
  readonly projectId: string;
}

/**
 * Logs the bootstrap user `admin` in (password method, scoped to project `admin`).
 * @throws Error with the status when Keystone's token call does not answer 201
 */
export async function issueAdminToken(url: string, password: string): Promise<AdminToken> {
  const issued = await fetch(`${url}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'admin', domain: { id: 'default' }, password } },
        },
        scope: { project: { name: 'admin', domain: { id: 'default' } } },
      },
    }),
  });
  if (issued.status !== 201)
    throw new Error(`POST ${url}/v3/auth/tokens answered ${issued.status}: ${await issued.text()}`);
  const body = (await issued.json()) as { token: { project: { id: string } } };
  return { token: issued.headers.get('x-subject-token')!, projectId: body.token.project.id };
}
