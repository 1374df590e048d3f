import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One user of a test server's `authorization` block, with publish/subscribe allow lists. */
export interface NatsTestUser {
  readonly user: string;
  readonly password: string;
  /** Subjects this user may publish on (NATS wildcards allowed); every subject when omitted. */
  readonly publish?: readonly string[];
  /** Subjects this user may subscribe to; every subject when omitted. */
  readonly subscribe?: readonly string[];
}

/** What {@link startNatsServer} starts: JetStream on, loopback only, optionally with users. */
export interface NatsTestServerOptions {
  /** Users with passwords and permissions; no authentication when omitted. */
  readonly users?: readonly NatsTestUser[];
  /** Path of the `nats-server` binary (default: `nats-server` on `PATH`). */
  readonly binary?: string;
}

/** A `nats-server` child process on a free loopback port, stopped by its PID. */
export interface NatsTestServer {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** PID of the running child, undefined while stopped. */
  readonly pid: number | undefined;
  /** The generated configuration file. */
  readonly configPath: string;
  /** The server's PID file (`pid_file` in its configuration), written while it runs. */
  readonly pidFile: string;
  /** Stops the child (SIGTERM, then SIGKILL after 5 s) and waits for its exit. Idempotent. */
  stop(): Promise<void>;
  /** Starts the child again on the same port with the same config and JetStream store. */
  start(): Promise<void>;
  /** Stops the child and removes its directory. */
  dispose(): Promise<void>;
}

/** Command that starts the project's shared nats-server on 127.0.0.1:4222. */
export const startNatsCommand = 'scripts/services/start-nats.sh';

/** The shared nats-server the integration tests use unless they start their own. */
export const defaultNatsUrl = process.env.NOVA_LFS_NATS_URL ?? 'nats://127.0.0.1:4222';

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freeLoopbackPort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` within `timeoutMs`. */
async function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.connect(port, host);
  });
}

/** Whether a NATS server answers at `url` (it sends its INFO line on connect). */
export async function natsAvailable(url = defaultNatsUrl, timeoutMs = 1000): Promise<boolean> {
  const u = new URL(url);
  return await new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('data', (d) => done(d.toString('utf8').startsWith('INFO ')));
    s.once('error', () => done(false));
    s.connect(Number(u.port || 4222), u.hostname);
  });
}

function quote(s: string): string {
  return JSON.stringify(s);
}

function permissionBlock(u: NatsTestUser): string {
  const list = (xs: readonly string[]) => `[${xs.map(quote).join(', ')}]`;
  const parts: string[] = [];
  if (u.publish) parts.push(`publish: { allow: ${list(u.publish)} }`);
  if (u.subscribe) parts.push(`subscribe: { allow: ${list(u.subscribe)} }`);
  return parts.length ? `, permissions: { ${parts.join(', ')} }` : '';
}

/** The configuration text of a loopback test server with JetStream in `storeDir` (and its PID in `pidFile`). */
export function natsTestConfig(
  port: number,
  storeDir: string,
  users?: readonly NatsTestUser[],
  pidFile?: string,
): string {
  const lines = [`listen: "127.0.0.1:${port}"`, `jetstream { store_dir: ${quote(storeDir)} }`];
  if (pidFile !== undefined) lines.push(`pid_file: ${quote(pidFile)}`);
  if (users?.length) {
    lines.push('authorization {', '  users = [');
    for (const u of users) {
      lines.push(`    { user: ${quote(u.user)}, password: ${quote(u.password)}${permissionBlock(u)} }`);
    }
    lines.push('  ]', '}');
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Starts a `nats-server` child with a generated config on a free loopback port and waits until it
 * listens (at most 10 s). The caller stops it with `stop()` or `dispose()` (by PID, never by name).
 */
export async function startNatsServer(options: NatsTestServerOptions = {}): Promise<NatsTestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'nlfs-nats-'));
  const port = await freeLoopbackPort();
  const configPath = join(dir, 'nats.conf');
  const pidFile = join(dir, 'nats.pid');
  writeFileSync(configPath, natsTestConfig(port, join(dir, 'js'), options.users, pidFile), { mode: 0o600 });
  const binary = options.binary ?? 'nats-server';
  let child: ChildProcess | undefined;
  let stderr = '';

  const start = async (): Promise<void> => {
    if (child) return;
    stderr = '';
    const c = spawn(binary, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 20_000) stderr += d.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)));
    const spawnError = new Promise<Error>((resolve) => c.once('error', resolve));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const race = await Promise.race([
        exited.then((code) => ({ exited: code })),
        spawnError.then((e) => ({ error: e })),
        new Promise<null>((r) => setTimeout(() => r(null), 50)),
      ]);
      if (race && 'error' in race) {
        child = undefined;
        throw new Error(`cannot start ${binary}: ${race.error.message}`);
      }
      if (race && 'exited' in race) {
        child = undefined;
        throw new Error(`${binary} exited with ${race.exited}: ${stderr.trim()}`);
      }
      if (/Server is ready/.test(stderr) && (await portOpen(port))) return;
    }
    await stop();
    throw new Error(`${binary} did not listen on 127.0.0.1:${port} within 10 s: ${stderr.trim()}`);
  };

  const stop = async (): Promise<void> => {
    const c = child;
    if (!c || c.pid === undefined) {
      child = undefined;
      return;
    }
    child = undefined;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    process.kill(c.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
    }, 5000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    configPath,
    pidFile,
    get pid() {
      return child?.pid;
    },
    start,
    stop,
    dispose: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
