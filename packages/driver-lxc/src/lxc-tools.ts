import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { type RunOptions, type RunResult, runCommand } from './command.js';
import { LxcCommandError, LxcUnavailableError } from './errors.js';

/** The `lxc-*` programs the driver runs. */
export type LxcTool =
  | 'lxc-start'
  | 'lxc-stop'
  | 'lxc-info'
  | 'lxc-ls'
  | 'lxc-freeze'
  | 'lxc-unfreeze'
  | 'lxc-attach';

/** Options of {@link LxcTools}. */
export interface LxcToolsOptions {
  /** Directory holding the `lxc-*` programs (default: the first of `$PATH`, /usr/bin, /usr/local/bin with `lxc-start`). */
  readonly binDir?: string | undefined;
  /** LXC's container directory (`-P`), absolute. */
  readonly lxcPath: string;
  /** Default timeout of one run in ms. */
  readonly timeoutMs: number;
}

/**
 * Runs the `lxc-*` tools for one lxcpath, with an argument vector (no shell), a timeout on every
 * run and the caller's signal: a hung tool is killed (SIGKILL) and the call rejects at once.
 */
export class LxcTools {
  private found: Promise<string> | undefined;

  constructor(private readonly options: LxcToolsOptions) {}

  /**
   * The directory of the tools, found once.
   * @throws LxcUnavailableError naming every directory tried.
   */
  binDir(): Promise<string> {
    this.found ??= this.find();
    this.found.catch(() => {
      this.found = undefined; // found later once installed
    });
    return this.found;
  }

  private async find(): Promise<string> {
    const candidates = this.options.binDir
      ? [this.options.binDir]
      : [
          ...new Set([
            ...(process.env.PATH ?? '').split(delimiter).filter(Boolean),
            '/usr/bin',
            '/usr/local/bin',
          ]),
        ];
    for (const dir of candidates) {
      try {
        await access(join(dir, 'lxc-start'), constants.X_OK);
        return dir;
      } catch {
        // next
      }
    }
    throw new LxcUnavailableError(candidates.map((d) => join(d, 'lxc-start')));
  }

  /** LXC's version (`lxc-start --version`), e.g. `5.0.2`. */
  async version(signal?: AbortSignal): Promise<string> {
    const dir = await this.binDir();
    try {
      const { stdout } = await runCommand(join(dir, 'lxc-start'), ['--version'], {
        signal,
        timeoutMs: this.options.timeoutMs,
      });
      return stdout.trim();
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw new LxcUnavailableError([join(dir, 'lxc-start')], { cause: e });
    }
  }

  /** Runs `tool -P <lxcPath> [-n <container>] ...args`. */
  async run(
    tool: LxcTool,
    container: string | undefined,
    args: readonly string[],
    options: Partial<RunOptions> = {},
  ): Promise<RunResult> {
    const dir = await this.binDir();
    return runCommand(
      join(dir, tool),
      ['-P', this.options.lxcPath, ...(container ? ['-n', container] : []), ...args],
      { timeoutMs: this.options.timeoutMs, ...options },
    );
  }

  /**
   * The LXC state of a container (`RUNNING`, `STOPPED`, `FROZEN`, ...), or undefined when LXC
   * does not know it.
   */
  async state(container: string, signal?: AbortSignal): Promise<string | undefined> {
    try {
      const { stdout } = await this.run('lxc-info', container, ['-s', '-H'], { signal });
      return stdout.trim() || undefined;
    } catch (e) {
      if (e instanceof LxcCommandError && e.details.exitCode === 1 && /doesn't exist/.test(e.details.stderr))
        return undefined;
      throw e;
    }
  }

  /** States of every container of the lxcpath whose name matches `pattern` (a regex for `lxc-ls`). */
  async states(pattern: string, signal?: AbortSignal): Promise<Map<string, string>> {
    const { stdout } = await this.run('lxc-ls', undefined, ['-f', '-F', 'NAME,STATE', pattern], { signal });
    const out = new Map<string, string>();
    for (const line of stdout.split('\n').slice(1)) {
      const [name, state] = line.trim().split(/\s+/);
      if (name && state) out.set(name, state);
    }
    return out;
  }
}
