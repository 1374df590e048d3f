import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import ssh2 from 'ssh2';
import {
  buildCommand,
  DEFAULT_MAX_COMMAND_LENGTH,
  encodeArgs,
  type ScriptArgs,
  type ScriptRun,
} from './command.js';
import { HyperVCommandError, HyperVConnectionError, HyperVSettingError } from './errors.js';
import type { ScriptName } from './scripts.js';

const { Client } = ssh2;
type SshClient = InstanceType<typeof Client>;

/** How to reach the Hyper-V host's OpenSSH server. */
export interface HyperVSshOptions {
  /** Host name or address. */
  readonly host: string;
  /** Default 22. */
  readonly port?: number;
  /** An account that may manage Hyper-V (an administrator or a member of Hyper-V Administrators). */
  readonly username: string;
  /** Private key (OpenSSH or PEM text). Passwords are not supported. */
  readonly privateKey: string | Buffer;
  readonly passphrase?: string;
  /**
   * The host key's fingerprint as `ssh-keygen -lf` prints it (`SHA256:<base64>`). The connection
   * is refused when the key differs. Required unless {@link acceptAnyHostKey}.
   */
  readonly hostKeySha256?: string;
  /** Skip the host key check (never on a network you do not own). Default false. */
  readonly acceptAnyHostKey?: boolean;
  /** Connect and handshake deadline in ms. Default 20,000. */
  readonly readyTimeoutMs?: number;
}

/** Options of {@link HyperVShell}. */
export interface HyperVShellOptions {
  /** Channels open at once on the one connection (OpenSSH's MaxSessions defaults to 10). Default 8. */
  readonly maxChannels?: number;
  /** Default deadline of one script call in ms. Default 120,000. */
  readonly commandTimeoutMs?: number;
  /** Longest command line (see `DEFAULT_MAX_COMMAND_LENGTH`). */
  readonly maxCommandLength?: number;
}

/** Per-call options of {@link HyperVShell.run} and {@link HyperVShell.upload}. */
export interface ShellCallOptions {
  readonly signal?: AbortSignal;
  /** Deadline of this call in ms (default the shell's `commandTimeoutMs`). */
  readonly timeoutMs?: number;
}

/** OpenSSH's fingerprint (`SHA256:<base64 without padding>`) of a public key blob. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * One SSH connection to a Hyper-V host (ssh2), opened on first use and again after it drops, over
 * which each script runs in its own exec channel and images go up over SFTP. Aborting a call
 * closes its channel at once (the remote PowerShell may still finish: the scripts' per-VM mutex
 * orders what follows).
 */
export class HyperVShell {
  private client: Promise<SshClient> | undefined;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private closed = false;
  private readonly maxChannels: number;
  private readonly commandTimeoutMs: number;
  private readonly maxCommandLength: number;

  constructor(
    private readonly target: HyperVSshOptions,
    options: HyperVShellOptions = {},
  ) {
    if (!target.hostKeySha256 && !target.acceptAnyHostKey)
      throw new HyperVSettingError(
        'ssh.hostKeySha256',
        'ssh.hostKeySha256 is required (the host key fingerprint, ssh-keygen -lf); or set ssh.acceptAnyHostKey',
      );
    this.maxChannels = options.maxChannels ?? 8;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 120_000;
    this.maxCommandLength = options.maxCommandLength ?? DEFAULT_MAX_COMMAND_LENGTH;
  }

  private get port(): number {
    return this.target.port ?? 22;
  }

  private connectionError(stage: string, e: unknown): HyperVConnectionError {
    return new HyperVConnectionError(
      { host: this.target.host, port: this.port, stage },
      e instanceof Error ? e.message : String(e),
      { cause: e },
    );
  }

  private connect(): Promise<SshClient> {
    if (this.closed) return Promise.reject(this.connectionError('connect', new Error('shell is closed')));
    if (this.client) return this.client;
    const connecting = new Promise<SshClient>((resolve, reject) => {
      const c = new Client();
      let ready = false;
      let hostKeyMismatch: string | undefined;
      const forget = () => {
        if (this.client === connecting) this.client = undefined;
      };
      c.on('ready', () => {
        ready = true;
        resolve(c);
      });
      c.on('error', (e) => {
        forget();
        if (!ready)
          reject(this.connectionError(hostKeyMismatch ? 'host key' : 'connect', hostKeyMismatch ?? e));
      });
      c.on('close', () => {
        forget();
        if (!ready) reject(this.connectionError('connect', new Error('connection closed during handshake')));
      });
      const expected = this.target.hostKeySha256?.replace(/=+$/, '');
      c.connect({
        host: this.target.host,
        port: this.port,
        username: this.target.username,
        privateKey: this.target.privateKey,
        ...(this.target.passphrase ? { passphrase: this.target.passphrase } : {}),
        readyTimeout: this.target.readyTimeoutMs ?? 20_000,
        keepaliveInterval: 15_000,
        hostVerifier: (key: Buffer) => {
          if (this.target.acceptAnyHostKey) return true;
          const actual = sshFingerprint(key);
          if (actual === expected) return true;
          hostKeyMismatch = `host key ${actual} is not the expected ${expected}`;
          return false;
        },
      });
    });
    this.client = connecting;
    connecting.catch(() => undefined);
    return connecting;
  }

  private async acquireChannel(signal?: AbortSignal): Promise<() => void> {
    while (this.active >= this.maxChannels) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const i = this.waiting.indexOf(go);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal?.reason);
        };
        const go = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        this.waiting.push(go);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.waiting.shift()?.();
    };
  }

  /**
   * Runs one of the driver's fixed scripts (its fixed command line) with `args` as data on stdin
   * and resolves with its exit code,
   * stdout and stderr (a non-zero exit is not a rejection: `parseResult` reads it). Rejects with
   * the signal's reason when aborted (the channel is closed), with a {@link HyperVCommandError}
   * (`timedOut`) past its deadline, and with a {@link HyperVConnectionError} when the host cannot
   * be reached.
   */
  async run(script: ScriptName, args: ScriptArgs, options: ShellCallOptions = {}): Promise<ScriptRun> {
    const { signal } = options;
    signal?.throwIfAborted();
    const command = buildCommand(script, this.maxCommandLength);
    const input = encodeArgs(args);
    const release = await this.acquireChannel(signal);
    try {
      const client = await this.raceSignal(this.connect(), signal);
      return await new Promise<ScriptRun>((resolve, reject) => {
        let stdout = '';
        let stderr = '';
        let settled = false;
        let channel: ssh2.ClientChannel | undefined;
        const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
        const finish = (f: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          f();
        };
        const closeChannel = () => {
          try {
            channel?.close();
          } catch {
            // already closed
          }
        };
        const onAbort = () => {
          closeChannel();
          finish(() => reject(signal?.reason));
        };
        const timer = setTimeout(() => {
          closeChannel();
          finish(() =>
            reject(
              new HyperVCommandError({
                script,
                problem: `no answer within ${timeoutMs} ms`,
                stderr: stderr.slice(-2_000),
                timedOut: true,
              }),
            ),
          );
        }, timeoutMs);
        signal?.addEventListener('abort', onAbort, { once: true });
        client.exec(command, (err, ch) => {
          if (err) {
            finish(() => reject(this.connectionError('exec', err)));
            return;
          }
          channel = ch;
          if (settled) {
            closeChannel();
            return;
          }
          ch.setEncoding('utf8');
          ch.stderr.setEncoding('utf8');
          ch.on('data', (d: string) => {
            stdout += d;
          });
          ch.stderr.on('data', (d: string) => {
            stderr += d;
          });
          ch.on('close', (code: number | null | undefined, sig?: string) => {
            finish(() =>
              resolve({
                exitCode: typeof code === 'number' ? code : undefined,
                ...(sig ? { signal: sig } : {}),
                stdout,
                stderr,
              }),
            );
          });
          ch.end(input); // the arguments, then EOF: PowerShell's $input ends there
        });
      });
    } finally {
      release();
    }
  }

  /**
   * Writes `source` to `remotePath` over SFTP (the path as the host's SFTP server names it).
   * Rejects with the signal's reason when aborted (the SFTP channel is closed; a part file may
   * remain: upload to a temporary name and commit it with a script).
   */
  async upload(source: Readable, remotePath: string, options: ShellCallOptions = {}): Promise<void> {
    const { signal } = options;
    signal?.throwIfAborted();
    const release = await this.acquireChannel(signal);
    try {
      const client = await this.raceSignal(this.connect(), signal);
      const sftp = await this.raceSignal(
        new Promise<ssh2.SFTPWrapper>((resolve, reject) =>
          client.sftp((err, s) => (err ? reject(this.connectionError('sftp', err)) : resolve(s))),
        ),
        signal,
      );
      try {
        await new Promise<void>((resolve, reject) => {
          const out = sftp.createWriteStream(remotePath);
          let settled = false;
          const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
          const finish = (f: () => void) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
            f();
          };
          const fail = (e: unknown) => {
            source.destroy();
            out.destroy();
            finish(() => reject(e));
          };
          const onAbort = () => fail(signal?.reason);
          const timer = setTimeout(
            () =>
              fail(
                new HyperVCommandError({
                  script: 'sftp upload',
                  problem: `not done within ${timeoutMs} ms`,
                  stderr: '',
                  timedOut: true,
                }),
              ),
            timeoutMs,
          );
          signal?.addEventListener('abort', onAbort, { once: true });
          source.on('error', fail);
          out.on('error', (e: unknown) => fail(this.connectionError('sftp write', e)));
          out.on('close', () => finish(resolve));
          source.pipe(out);
        });
      } finally {
        sftp.end();
      }
    } finally {
      release();
    }
  }

  private raceSignal<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
    if (!signal) return p;
    signal.throwIfAborted();
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  /** Closes the connection. Calls after this fail. */
  async close(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    const client = await c.catch(() => undefined);
    client?.end();
  }
}
