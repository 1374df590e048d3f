import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { arch, cpus, hostname, totalmem } from 'node:os';
import { isAbsolute, join } from 'node:path';
import {
  type ComputeDriver,
  type DriverCallOptions,
  type DriverCapabilities,
  DriverError,
  type DriverInstance,
  type HostReport,
  type Image,
  type ImageService,
  type Instance,
  type PowerState,
  type SpawnRequest,
} from '@nova-lfs/core';
import {
  type ConsoleReadable,
  defineCapabilities,
  InflightWork,
  type Pausable,
  type PowerControl,
  type Rebootable,
  type Rebuildable,
  reasonIfAborted,
  type Snapshottable,
  untilAborted,
} from '@nova-lfs/core/ports';
import {
  type CgroupVersion,
  cgroupConfig,
  detectCgroupVersion,
  hasSwapAccounting,
  limitsOf,
} from './cgroup-limits.js';
import { runCommand } from './command.js';
import { DEFAULT_BOOT_SCRIPT, parseConfig, readTags, renderContainerConfig } from './container-config.js';
import { LxcSettingError, LxcUnavailableError, wrapLxcError } from './errors.js';
import { LxcTools } from './lxc-tools.js';
import { containerName, hostnameOf, instanceIdOf } from './names.js';
import { PowerPoller } from './power-events.js';
import { powerStateOf } from './power-state.js';
import { packRootfs, unpackRootfs } from './rootfs.js';
import { RootfsCache } from './rootfs-cache.js';

/** Options of {@link LxcDriver}. */
export interface LxcDriverOptions {
  /**
   * Nova LFS host id this driver serves (default `lxc`), recorded in every container's config:
   * several hosts may share one lxcpath, each seeing only its own containers. Keep it stable
   * across restarts (reconciliation finds a host's containers by it).
   */
  readonly hostId?: string;
  /** LXC's container directory, absolute, no whitespace (default `/var/lib/lxc`; created if missing). */
  readonly lxcPath?: string;
  /** Directory of the `lxc-*` tools (default: found on `$PATH`, then /usr/bin, /usr/local/bin). */
  readonly lxcBinDir?: string;
  /** Host name reported (default: the machine's). */
  readonly hostname?: string;
  /** Process limit per container (default 1024). */
  readonly pidsLimit?: number;
  /** Seconds a graceful stop may take before SIGKILL when the engine gives no timeout (default 10). */
  readonly stopTimeoutSeconds?: number;
  /** Longest any one `lxc-*` or `tar` run may take in ms before it is killed (default 60,000). */
  readonly commandTimeoutMs?: number;
  /** cgroup interface for limits (default: detected under `cgroupRoot`). */
  readonly cgroupVersion?: CgroupVersion;
  /** Where the cgroup hierarchies are mounted (default `/sys/fs/cgroup`). */
  readonly cgroupRoot?: string;
  /** How often `events$` polls the containers' states while subscribed, in ms (default 1000). */
  readonly pollIntervalMs?: number;
  /** Console log size before LXC rotates it, in bytes (default 1 MiB). */
  readonly consoleLogBytes?: number;
  /**
   * Seccomp profile for containers (default Debian's `/usr/share/lxc/config/common.seccomp` when
   * it exists; `false` for none).
   */
  readonly seccompProfile?: string | false;
  /** Freeze a running container while its snapshot is taken (default true: a consistent tarball). */
  readonly freezeForSnapshot?: boolean;
  /**
   * How a container gets its rootfs: `copy` (default) unpacks the image into the container's own
   * directory; `overlay` unpacks each image once into `<lxcPath>/.nova-lfs-bases/<sha256>` and gives
   * every container an overlayfs upper directory over it (faster spawns, shared disk; needs
   * overlayfs and an lxcPath on a file system that can be an overlay upper, e.g. ext4 or tmpfs).
   */
  readonly rootfs?: 'copy' | 'overlay';
}

/** What the LXC driver can do. Suspend (save to disk) needs CRIU, which does not work here. */
export const lxcCapabilities = defineCapabilities({
  powerControl: true,
  reboot: true,
  pause: true,
  rebuild: true,
  snapshot: true,
  consoleOutput: true,
}) satisfies DriverCapabilities;

const DEFAULT_SECCOMP = '/usr/share/lxc/config/common.seccomp';

/** lxc-stop's exit codes for a container that is not running (2) or not defined (1). */
const NOT_RUNNING = [1, 2];

/**
 * System containers as instances, through LXC 5's `lxc-*` tools (run with an argument vector,
 * never a shell). Each instance is a container `nova-<uuid>` in `lxcPath` whose directory holds a
 * config the driver writes (no network, directory rootfs, console log, limits, and the instance
 * uuid, project and host recorded as `lxc.environment` entries), the rootfs unpacked from the
 * image cache's verified tarball, the console log and a boot script run as init.
 *
 * Every call honours `options.signal`: the `lxc-*` or `tar` run in progress is killed and the call
 * rejects with the signal's reason. A spawn or rebuild cut that way removes what it made; a
 * `destroy` of that instance waits for that clean-up first. Errors are `DriverError`s (driver
 * `lxc`) with `reschedule: false` for what no host can fix (an image that is not a tar rootfs or
 * fails its sha256, a malformed quota extra spec).
 */
export class LxcDriver
  implements ComputeDriver, PowerControl, Rebootable, Pausable, Rebuildable, Snapshottable, ConsoleReadable
{
  readonly kind = 'lxc';
  readonly capabilities: DriverCapabilities = lxcCapabilities;
  /** The host id recorded in this driver's containers. */
  readonly hostId: string;
  /** LXC's container directory. */
  readonly lxcPath: string;
  readonly tools: LxcTools;
  private readonly poller: PowerPoller;
  private readonly inflight = new InflightWork();
  private readonly timeoutMs: number;
  private cgroup: Promise<{ version: CgroupVersion | undefined; swap: boolean }> | undefined;
  private readonly bases: RootfsCache;
  private readonly overlay: boolean;
  /** The seccomp profile once looked up (`null`: none). */
  private seccomp: string | null | undefined;

  /** @throws LxcSettingError for an lxcPath that is not absolute or holds whitespace, or an empty hostId. */
  constructor(private readonly options: LxcDriverOptions = {}) {
    this.hostId = options.hostId ?? 'lxc';
    this.lxcPath = options.lxcPath ?? '/var/lib/lxc';
    if (!isAbsolute(this.lxcPath) || /[\s\\\0:,]/.test(this.lxcPath))
      throw new LxcSettingError(
        'lxcPath',
        'lxcPath must be an absolute path without whitespace, backslashes, colons or commas',
      );
    if (!this.hostId || this.hostId.length > 255 || /[\p{Cc}]/u.test(this.hostId))
      throw new LxcSettingError('hostId', 'hostId must be 1-255 characters without control characters');
    this.timeoutMs = options.commandTimeoutMs ?? 60_000;
    this.tools = new LxcTools({
      binDir: options.lxcBinDir,
      lxcPath: this.lxcPath,
      timeoutMs: this.timeoutMs,
    });
    this.poller = new PowerPoller(() => this.listInstances(), options.pollIntervalMs ?? 1000);
    this.bases = new RootfsCache(this.lxcPath, this.timeoutMs);
    this.overlay = options.rootfs === 'overlay';
  }

  /** Power-state changes seen by polling `lxc-ls` while subscribed (see {@link PowerPoller}). */
  get events$() {
    return this.poller.events$;
  }

  /**
   * Checks the LXC tools and reads this machine's CPUs, memory and the disk of `lxcPath`.
   * @throws LxcUnavailableError when the `lxc-*` tools are missing.
   */
  async getHostReport(): Promise<HostReport> {
    const version = await this.tools.version();
    await mkdir(this.lxcPath, { recursive: true });
    let diskGb = 0;
    try {
      const fs = await statfs(this.lxcPath);
      diskGb = Math.floor((fs.blocks * fs.bsize) / 2 ** 30);
    } catch {
      diskGb = 0;
    }
    const { version: cgroupVersion } = await this.cgroupInfo();
    return {
      hostname: this.options.hostname ?? hostname(),
      hypervisorType: 'lxc',
      architecture: architectureOf(arch()),
      inventory: {
        VCPU: { total: cpus().length, reserved: 0, allocationRatio: 1 },
        MEMORY_MB: { total: Math.floor(totalmem() / 2 ** 20), reserved: 0, allocationRatio: 1 },
        ...(diskGb > 0 ? { DISK_GB: { total: diskGb, reserved: 0, allocationRatio: 1 } } : {}),
      },
      traits: [
        'COMPUTE_CONTAINER',
        ...(cgroupVersion ? [`CUSTOM_CGROUP_${cgroupVersion.toUpperCase()}`] : []),
        `CUSTOM_LXC_${version.split('.')[0] ?? 'X'}`,
      ],
    };
  }

  /**
   * Writes the container (config, boot script, rootfs unpacked from the verified image tarball)
   * and starts it; resolves once it runs. On failure or abort nothing is left behind.
   * @throws DriverError (see the class doc); the signal's reason when it aborts.
   */
  async spawn(request: SpawnRequest): Promise<void> {
    request.signal?.throwIfAborted();
    const name = containerName(request.instance.id);
    await untilAborted(
      this.inflight.track(request.instance.id, () =>
        this.own(request.instance.id, async () => {
          await mkdir(this.lxcPath, { recursive: true });
          try {
            await mkdir(this.dir(name), { mode: 0o750 }); // atomic: of two spawns of one uuid, one wins
          } catch (e) {
            throw new DriverError(
              { driver: 'lxc', operation: 'spawn', instanceId: request.instance.id, retryable: false },
              (e as NodeJS.ErrnoException).code === 'EEXIST'
                ? `container ${name} already exists in ${this.lxcPath}`
                : `cannot create ${this.dir(name)}: ${(e as Error).message}`,
              { cause: e },
            );
          }
          try {
            await this.build(name, request, 'spawn');
          } catch (e) {
            await this.remove(name).catch(() => undefined);
            throw reasonIfAborted(request.signal, wrapLxcError('spawn', e, request.instance.id));
          }
          this.poller.noteOwn(request.instance.id, 'running');
        }),
      ),
      request.signal,
    );
  }

  /**
   * Stops the container (SIGKILL) and removes its directory; resolves if there is none or it
   * belongs to another host. Waits first for a spawn or rebuild of the instance still running.
   */
  async destroy(instance: Instance, options?: DriverCallOptions): Promise<void> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    await this.inflight.settled(instance.id, signal);
    const name = containerName(instance.id);
    if (!(await this.owned(name))) return;
    await this.own(instance.id, async () => {
      try {
        await this.remove(name, signal);
      } catch (e) {
        throw reasonIfAborted(signal, wrapLxcError('destroy', e, instance.id));
      }
      this.poller.noteOwn(instance.id, 'nostate');
    });
  }

  async getPowerState(instance: Instance): Promise<PowerState> {
    const name = containerName(instance.id);
    if (!(await this.owned(name))) return 'nostate';
    try {
      const state = await this.tools.state(name);
      return state ? powerStateOf(state) : 'nostate';
    } catch (e) {
      throw wrapLxcError('info', e, instance.id);
    }
  }

  /** This host's containers (by the host id in their configs), with their power states. */
  async listInstances(): Promise<DriverInstance[]> {
    let entries: string[];
    try {
      entries = await readdir(this.lxcPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw wrapLxcError('list', e);
    }
    const mine: Array<{ name: string; instanceId: string; projectId?: string }> = [];
    for (const name of entries) {
      const id = instanceIdOf(name);
      if (!id) continue;
      const tags = await this.tagsOf(name);
      if (!tags || tags.hostId !== this.hostId || tags.instanceId !== id) continue;
      mine.push({
        name,
        instanceId: id,
        ...(tags.projectId !== undefined ? { projectId: tags.projectId } : {}),
      });
    }
    if (mine.length === 0) return [];
    let states: Map<string, string>;
    try {
      states = await this.tools.states('^nova-');
    } catch (e) {
      throw wrapLxcError('list', e);
    }
    return mine.map((m) => ({
      instanceId: m.instanceId,
      powerState: powerStateOf(states.get(m.name) ?? 'STOPPED'),
      ...(m.projectId !== undefined ? { projectId: m.projectId } : {}),
    }));
  }

  /**
   * Graceful stop: SIGTERM to init (`lxc.signal.halt`), SIGKILL after `timeoutMs` (default
   * `stopTimeoutSeconds`, at least 1 s). A stopped container is left as it is.
   */
  async powerOff(instance: Instance, options?: DriverCallOptions & { timeoutMs?: number }): Promise<void> {
    const ms = options?.timeoutMs ?? (this.options.stopTimeoutSeconds ?? 10) * 1000;
    await this.stop(instance, Math.max(1, Math.ceil(ms / 1000)), options?.signal);
  }

  /** Starts a stopped container; a running one is left as it is. */
  async powerOn(instance: Instance, options?: DriverCallOptions): Promise<void> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    const name = await this.ownedOrThrow(instance, 'start');
    await this.own(instance.id, async () => {
      try {
        const state = await this.tools.state(name, signal);
        if (state && powerStateOf(state) === 'running') return;
        await untilAborted(this.start(name), signal);
      } catch (e) {
        throw reasonIfAborted(signal, wrapLxcError('start', e, instance.id));
      }
      this.poller.noteOwn(instance.id, 'running');
    });
  }

  /** Soft: graceful stop (within `stopTimeoutSeconds`) then start; hard: SIGKILL then start. */
  async reboot(instance: Instance, kind: 'soft' | 'hard', options?: DriverCallOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    await this.stop(instance, kind === 'soft' ? (this.options.stopTimeoutSeconds ?? 10) : 0, options?.signal);
    await this.powerOn(instance, options);
  }

  /** Freezes every process of the container (`lxc-freeze`; the v1 freezer may take about 1 s). */
  async pause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.simple('lxc-freeze', 'pause', instance, options, 'paused');
  }

  async unpause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.simple('lxc-unfreeze', 'unpause', instance, options, 'running');
  }

  /**
   * Re-creates the container from the new image with the same name (uuid): stopped, its rootfs
   * replaced, its config rewritten (limits of the request's flavor), started again. The console
   * log is kept.
   */
  async rebuild(request: SpawnRequest): Promise<void> {
    const { signal } = request;
    signal?.throwIfAborted();
    const name = await this.ownedOrThrow(request.instance, 'rebuild');
    await untilAborted(
      this.inflight.track(request.instance.id, () =>
        this.own(request.instance.id, async () => {
          try {
            await this.tools.run('lxc-stop', name, ['-k'], { okExitCodes: NOT_RUNNING, signal });
            for (const part of ['rootfs', 'upper', 'work'])
              await rm(join(this.dir(name), part), { recursive: true, force: true });
            await this.build(name, request, 'rebuild');
          } catch (e) {
            throw reasonIfAborted(signal, wrapLxcError('rebuild', e, request.instance.id));
          }
          this.poller.noteOwn(request.instance.id, 'running');
        }),
      ),
      signal,
    );
  }

  /**
   * Streams the container's rootfs as a tar archive into the image service, which hashes it
   * (sha256); a running container is frozen meanwhile (`freezeForSnapshot`). The image
   * (disk format `tar`) boots with this driver. An overlay container's merged view is read: through
   * its init's `/proc/<pid>/root` while it runs, else from a read-only overlay mounted for the
   * snapshot (upper over base) and unmounted after it.
   */
  async snapshot(
    instance: Instance,
    options: DriverCallOptions & { name: string; images: ImageService },
  ): Promise<Image> {
    const { signal } = options;
    signal?.throwIfAborted();
    const name = await this.ownedOrThrow(instance, 'snapshot');
    const end = this.poller.begin(instance.id); // the freeze is the driver's own
    let frozen = false;
    let release = async () => {};
    try {
      if (this.options.freezeForSnapshot !== false) {
        const state = await this.tools.state(name, signal);
        if (state === 'RUNNING') {
          await this.tools.run('lxc-freeze', name, [], { signal });
          frozen = true;
        }
      }
      const source = await this.snapshotSource(name, signal);
      release = source.release;
      const importing = options.images.import(
        {
          name: options.name,
          diskFormat: 'tar',
          containerFormat: 'bare',
          properties: { hypervisorType: 'lxc', sourceInstance: instance.id },
        },
        { kind: 'stream', open: () => packRootfs(source.dir, signal) },
      );
      return await untilAborted(importing, signal);
    } catch (e) {
      throw reasonIfAborted(signal, wrapLxcError('snapshot', e, instance.id));
    } finally {
      await release().catch(() => undefined);
      if (frozen) await this.tools.run('lxc-unfreeze', name, []).catch(() => undefined);
      end();
    }
  }

  /**
   * Removes the unpacked image bases (`rootfs: 'overlay'`) that no container in the lxcpath uses
   * and that were not used for `minAgeMs` (default 10 minutes). Returns the sha256 of each.
   */
  pruneRootfsCache(minAgeMs?: number): Promise<string[]> {
    return this.bases.prune(minAgeMs);
  }

  /**
   * The console log (`lxc.console.logfile`, after its rotated part) with the pty's CRLF line ends
   * as LF; the last `lines` lines when given.
   */
  async getConsoleOutput(instance: Instance, options?: { lines?: number }): Promise<string> {
    const name = await this.ownedOrThrow(instance, 'console');
    const base = join(this.dir(name), 'console.log');
    const parts = await Promise.all([`${base}.1`, base].map((p) => readFile(p, 'utf8').catch(() => '')));
    const text = parts.join('').replace(/\r\n/g, '\n'); // the console is a pty: ONLCR
    if (!options?.lines) return text;
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-options.lines).join('\n') + (lines.length ? '\n' : '');
  }

  /** Stops polling for events. Containers keep running. */
  async close(): Promise<void> {
    this.poller.close();
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * The directory whose tree a snapshot archives, and what to undo afterwards: the copy's rootfs;
   * for an overlay, the running init's root, or a read-only overlay mounted for the snapshot.
   */
  private async snapshotSource(
    name: string,
    signal: AbortSignal | undefined,
  ): Promise<{ dir: string; release: () => Promise<void> }> {
    const dir = this.dir(name);
    const rootfs = parseConfig(await readFile(join(dir, 'config'), 'utf8')).find(
      ([k]) => k === 'lxc.rootfs.path',
    )?.[1];
    if (!rootfs?.startsWith('overlay:')) return { dir: join(dir, 'rootfs'), release: async () => {} };
    const [base, upper] = rootfs.slice('overlay:'.length).split(':') as [string, string];
    const state = await this.tools.state(name, signal);
    if (state === 'RUNNING' || state === 'FROZEN') {
      const { stdout } = await this.tools.run('lxc-info', name, ['-p', '-H'], { signal });
      const pid = Number(stdout.trim());
      if (Number.isInteger(pid) && pid > 0) return { dir: `/proc/${pid}/root`, release: async () => {} };
    }
    const mnt = join(dir, 'snapshot');
    await mkdir(mnt, { recursive: true });
    await runCommand('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${upper}:${base}`, mnt], {
      signal,
      timeoutMs: this.timeoutMs,
    });
    return {
      dir: mnt,
      release: async () => {
        await runCommand('umount', [mnt], { timeoutMs: this.timeoutMs });
        await rm(mnt, { recursive: true, force: true });
      },
    };
  }

  /** Runs one of the driver's own calls on an instance; events polls skip the instance meanwhile. */
  private async own<T>(instanceId: string, work: () => Promise<T>): Promise<T> {
    const end = this.poller.begin(instanceId);
    try {
      return await work();
    } finally {
      end();
    }
  }

  private dir(name: string): string {
    return join(this.lxcPath, name);
  }

  private cgroupInfo(): Promise<{ version: CgroupVersion | undefined; swap: boolean }> {
    this.cgroup ??= (async () => {
      const root = this.options.cgroupRoot ?? '/sys/fs/cgroup';
      const version = this.options.cgroupVersion ?? (await detectCgroupVersion(root));
      return { version, swap: version === 'v1' && (await hasSwapAccounting(root)) };
    })();
    return this.cgroup;
  }

  /** The seccomp profile containers get (looked up once: a host fact). */
  private seccompProfile(): string | undefined {
    if (this.seccomp === undefined) {
      const { seccompProfile } = this.options;
      this.seccomp =
        seccompProfile === false
          ? null
          : (seccompProfile ?? (existsSync(DEFAULT_SECCOMP) ? DEFAULT_SECCOMP : null));
    }
    return this.seccomp ?? undefined;
  }

  /** The driver's tags of a container, or undefined without a readable config. */
  private async tagsOf(name: string) {
    try {
      return readTags(await readFile(join(this.dir(name), 'config'), 'utf8'));
    } catch {
      return undefined;
    }
  }

  /** Whether the container exists and is this host's. */
  private async owned(name: string): Promise<boolean> {
    const tags = await this.tagsOf(name);
    return tags?.hostId === this.hostId;
  }

  private async ownedOrThrow(instance: Instance, operation: string): Promise<string> {
    const name = containerName(instance.id);
    if (await this.owned(name)) return name;
    throw new DriverError(
      { driver: 'lxc', operation, instanceId: instance.id, retryable: false },
      `no container ${name} of host ${this.hostId} in ${this.lxcPath}`,
    );
  }

  /**
   * Writes config and boot script (first, so the directory is known as this host's at once), then
   * unpacks the rootfs and starts the container, checking the signal between steps.
   */
  private async build(name: string, request: SpawnRequest, operation: string): Promise<void> {
    const { instance, image, signal } = request;
    if (image.diskFormat !== 'tar' && !(image.containerFormat === 'docker' && image.diskFormat === 'raw'))
      throw new DriverError(
        { driver: 'lxc', operation, instanceId: instance.id, retryable: false, reschedule: false },
        `image ${image.id} has disk format ${image.diskFormat}, need tar (or raw in container format docker)`,
      );
    const limits = limitsOf(request.flavor, this.options.pidsLimit ?? 1024);
    const cgroup = await this.cgroupInfo();
    if (!cgroup.version)
      throw new DriverError(
        { driver: 'lxc', operation, instanceId: instance.id, retryable: false },
        `no memory cgroup controller under ${this.options.cgroupRoot ?? '/sys/fs/cgroup'}: limits cannot be applied`,
      );
    const artifact = await untilAborted(request.images.acquire(image.id), signal);
    signal?.throwIfAborted();
    const dir = this.dir(name); // made by spawn (or there already for a rebuild)
    const seccomp = this.seccompProfile();
    const base = join(this.bases.root, image.sha256);
    const config = renderContainerConfig({
      hostname: hostnameOf(instance.name, instance.id),
      rootfs: this.overlay ? `overlay:${base}:${join(dir, 'upper')}` : `dir:${join(dir, 'rootfs')}`,
      consoleLogPath: join(dir, 'console.log'),
      bootScriptPath: join(dir, 'boot.sh'),
      consoleLogBytes: this.options.consoleLogBytes ?? 2 ** 20,
      instanceId: instance.id.toLowerCase(),
      projectId: instance.projectId,
      hostId: this.hostId,
      cgroupVersion: cgroup.version,
      limits: cgroupConfig(limits, cgroup.version, { swapAccounting: cgroup.swap }),
      seccompProfile: seccomp,
    });
    await writeFile(join(dir, 'config'), config, { mode: 0o640 });
    await writeFile(join(dir, 'boot.sh'), DEFAULT_BOOT_SCRIPT, { mode: 0o644 });
    if (this.overlay) {
      await untilAborted(this.bases.ensure(image.sha256, artifact.path), signal);
      await mkdir(join(dir, 'upper'), { mode: 0o755 });
    } else {
      await unpackRootfs(artifact.path, join(dir, 'rootfs'), { signal, timeoutMs: this.timeoutMs });
    }
    signal?.throwIfAborted();
    await this.start(name);
    signal?.throwIfAborted();
  }

  /**
   * `lxc-start -d`, which itself waits for the container to be RUNNING: LXC 5's daemonized start
   * returns only once the container reports RUNNING, and exits non-zero when it reports STOPPED or
   * ABORTING instead (checked here: an init that cannot be executed fails the start). So no second
   * tool run (`lxc-info`, `lxc-wait`) confirms the state; an init that exits on its own later is a
   * power event (`events$`). Never cut by a signal: killing lxc-start would leave its daemonized
   * monitor starting the container unseen, so callers stop waiting with `untilAborted` instead (its
   * own timeout still applies).
   */
  private async start(name: string): Promise<void> {
    await this.tools.run('lxc-start', name, ['-d']);
  }

  /** Stops within `seconds` (0: SIGKILL at once); a stopped container is left as it is. */
  private async stop(instance: Instance, seconds: number, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    const name = await this.ownedOrThrow(instance, 'stop');
    const end = this.poller.begin(instance.id);
    try {
      if ((await this.tools.state(name, signal)) === 'FROZEN')
        await this.tools.run('lxc-unfreeze', name, [], { signal });
      await this.tools.run('lxc-stop', name, seconds === 0 ? ['-k'] : ['-t', String(seconds)], {
        okExitCodes: NOT_RUNNING,
        signal,
        timeoutMs: this.timeoutMs + seconds * 1000,
      });
      this.poller.noteOwn(instance.id, 'shutdown');
    } catch (e) {
      throw reasonIfAborted(signal, wrapLxcError('stop', e, instance.id));
    } finally {
      end();
    }
  }

  private async simple(
    tool: 'lxc-freeze' | 'lxc-unfreeze',
    operation: string,
    instance: Instance,
    options: DriverCallOptions | undefined,
    after: PowerState,
  ): Promise<void> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    const name = await this.ownedOrThrow(instance, operation);
    const end = this.poller.begin(instance.id);
    try {
      await this.tools.run(tool, name, [], { signal });
      this.poller.noteOwn(instance.id, after);
    } catch (e) {
      throw reasonIfAborted(signal, wrapLxcError(operation, e, instance.id));
    } finally {
      end();
    }
  }

  /** SIGKILLs the container if it runs (thawing it first) and removes its directory. */
  private async remove(name: string, signal?: AbortSignal): Promise<void> {
    const state = await this.tools.state(name, signal).catch((e: unknown) => {
      if (e instanceof LxcUnavailableError) throw e;
      if (signal?.aborted) throw signal.reason;
      return undefined;
    });
    if (state === 'FROZEN' || state === 'FREEZING')
      await this.tools.run('lxc-unfreeze', name, [], { signal }).catch(() => undefined);
    if (state && state !== 'STOPPED')
      await this.tools.run('lxc-stop', name, ['-k'], { okExitCodes: NOT_RUNNING, signal });
    signal?.throwIfAborted();
    const mnt = join(this.dir(name), 'snapshot'); // an overlay snapshot's mount a crash left behind
    if (existsSync(mnt))
      await runCommand('umount', [mnt], { timeoutMs: this.timeoutMs }).catch(() => undefined);
    await rm(this.dir(name), { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Node's `os.arch()` as the architecture names Nova uses. */
function architectureOf(nodeArch: string): string {
  switch (nodeArch) {
    case 'x64':
      return 'x86_64';
    case 'arm64':
      return 'aarch64';
    case 'ia32':
      return 'i686';
    default:
      return nodeArch;
  }
}
