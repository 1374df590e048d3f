import { statfs } from 'node:fs/promises';
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
import Dockerode from 'dockerode';
import { demuxLogs } from './console-log.js';
import { containerSpec } from './container-spec.js';
import { DockerUnavailableError, dockerStatus, wrapDockerError } from './errors.js';
import { DockerEventStream } from './event-stream.js';
import { claimHostScope, releaseHostScope } from './host-scope.js';
import { ImageLoader } from './image-loader.js';
import { containerName, HOST_LABEL, INSTANCE_LABEL, PROJECT_LABEL } from './labels.js';
import { powerStateOf } from './power-state.js';

/** Options of {@link DockerDriver}. */
export interface DockerDriverOptions {
  /** A dockerode client (default: one on `socketPath`). */
  readonly docker?: Dockerode;
  /** dockerd socket (default `/var/run/docker.sock`). */
  readonly socketPath?: string;
  /**
   * Nova LFS host id this driver serves (default `docker`): containers are scoped by the label
   * `nova-lfs.host=<hostId>`, so several hosts may share one dockerd, each with its own hostId.
   * Keep it stable across restarts (reconciliation finds a host's containers by it). Two live
   * drivers of one process with the same hostId on one dockerd are refused when the second reads
   * its host report (`DockerScopeConflictError`, a `ConfigurationError`).
   */
  readonly hostId?: string;
  /** Host name reported (default: dockerd's). */
  readonly hostname?: string;
  /** Process limit per container (default 1024). */
  readonly pidsLimit?: number;
  /** Seconds a graceful stop may take before SIGKILL when the engine gives no timeout (default 10). */
  readonly stopTimeoutSeconds?: number;
  /** Command when the image and metadata give none (default: print a boot line, then sleep). */
  readonly defaultCommand?: readonly string[];
}

/** Docker's smallest memory limit: a flavor below it runs on no Docker host. */
export const DOCKER_MIN_MEMORY_MB = 6;

/** What the Docker driver can do. Suspend (save to disk) does not exist for containers. */
export const dockerCapabilities = defineCapabilities({
  powerControl: true,
  reboot: true,
  pause: true,
  rebuild: true,
  snapshot: true,
  consoleOutput: true,
}) satisfies DriverCapabilities;

/**
 * Containers as instances, through the Docker Engine API (dockerode). Images come from core's
 * image cache and are imported offline; containers carry the instance uuid, project and host as
 * labels, run with network mode `none` by default and with the flavor's CPU, memory and pid limits.
 *
 * Every call honours `options.signal`: it stops waiting as soon as the signal aborts and rejects
 * with its reason. Reads, waits (stop timeouts, image uploads, logs, exports) are cut on the wire;
 * a container create or start already sent is let finish in the background and the container it
 * made removed, and a `destroy` of that instance waits for that clean-up first, so an aborted spawn
 * leaves nothing behind. Errors are `DriverError`s with `retryable` (lost connection, busy daemon)
 * and `reschedule: false` for what no host can fix (an image that is not a tar rootfs or fails its
 * sha256, a flavor below Docker's memory minimum).
 */
export class DockerDriver
  implements ComputeDriver, PowerControl, Rebootable, Pausable, Rebuildable, Snapshottable, ConsoleReadable
{
  readonly kind = 'docker';
  readonly capabilities: DriverCapabilities = dockerCapabilities;
  readonly docker: Dockerode;
  readonly hostId: string;
  private readonly loader: ImageLoader;
  private readonly stream: DockerEventStream;
  private readonly socketPath: string;
  /** Spawns and rebuilds still talking to dockerd, by instance id (their callers may have left). */
  private readonly inflight = new InflightWork();
  /** dockerd's id, once the host report claimed this driver's scope on it. */
  private daemonId: string | undefined;

  constructor(private readonly options: DockerDriverOptions = {}) {
    this.socketPath = options.socketPath ?? '/var/run/docker.sock';
    this.docker = options.docker ?? new Dockerode({ socketPath: this.socketPath });
    this.hostId = options.hostId ?? 'docker';
    this.loader = new ImageLoader(this.docker);
    this.stream = new DockerEventStream(this.docker, this.hostId);
  }

  get events$() {
    return this.stream.events$;
  }

  /**
   * Reads dockerd's resources and claims this driver's label scope on that daemon.
   * @throws DockerUnavailableError when dockerd does not answer.
   * @throws DockerScopeConflictError when another live driver of this process serves the same
   *   hostId on the same dockerd.
   */
  async getHostReport(): Promise<HostReport> {
    let info: {
      ID?: string;
      NCPU?: number;
      MemTotal?: number;
      Name?: string;
      Architecture?: string;
      DockerRootDir?: string;
    };
    try {
      info = await this.docker.info();
    } catch (e) {
      throw new DockerUnavailableError(this.socketPath, { cause: e });
    }
    const daemonId = info.ID || this.socketPath;
    claimHostScope(daemonId, this.hostId, this);
    this.daemonId = daemonId;
    await this.stream.open();
    let diskGb = 0;
    try {
      const fs = await statfs(info.DockerRootDir ?? '/var/lib/docker');
      diskGb = Math.floor((fs.blocks * fs.bsize) / 2 ** 30);
    } catch {
      diskGb = 0;
    }
    return {
      hostname: this.options.hostname ?? info.Name ?? 'docker',
      hypervisorType: 'docker',
      architecture: info.Architecture ?? 'x86_64',
      inventory: {
        VCPU: { total: info.NCPU ?? 1, reserved: 0, allocationRatio: 1 },
        MEMORY_MB: { total: Math.floor((info.MemTotal ?? 0) / 2 ** 20), reserved: 0, allocationRatio: 1 },
        ...(diskGb > 0 ? { DISK_GB: { total: diskGb, reserved: 0, allocationRatio: 1 } } : {}),
      },
      traits: ['COMPUTE_CONTAINER'],
    };
  }

  /**
   * Imports the image if needed, creates and starts the container; resolves once it runs.
   * @throws DriverError (classified, see the class doc); the signal's reason when it aborts.
   */
  async spawn(request: SpawnRequest): Promise<void> {
    request.signal?.throwIfAborted();
    await untilAborted(
      this.inflight.track(request.instance.id, async () => {
        await this.stream.open();
        const ref = await this.loader.ensure(request.image, request.images, request.signal);
        await this.createAndStart(request.instance, ref, request.image, request);
      }),
      request.signal,
    );
  }

  /**
   * Removes the container and its anonymous volumes; resolves if there is none. Waits first for
   * a spawn or rebuild of the instance still talking to dockerd (so what it creates goes too).
   */
  async destroy(instance: Instance, options?: DriverCallOptions): Promise<void> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    await this.inflight.settled(instance.id, signal);
    const container = this.docker.getContainer(containerName(instance.id));
    for (let attempt = 0; ; attempt++) {
      try {
        await container.remove({ force: true, v: true, abortSignal: signal });
        return;
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        const status = dockerStatus(e);
        if (status === 404) return;
        if (status === 409 && attempt < 50) {
          await untilAborted(new Promise((r) => setTimeout(r, 100)), signal);
          continue;
        }
        throw wrapDockerError('destroy', e, instance.id);
      }
    }
  }

  async getPowerState(instance: Instance): Promise<PowerState> {
    try {
      const info = await this.docker.getContainer(containerName(instance.id)).inspect();
      return powerStateOf(info.State);
    } catch (e) {
      if (dockerStatus(e) === 404) return 'nostate';
      throw wrapDockerError('inspect', e, instance.id);
    }
  }

  async listInstances(): Promise<DriverInstance[]> {
    try {
      const list = await this.docker.listContainers({
        all: true,
        filters: { label: [INSTANCE_LABEL, `${HOST_LABEL}=${this.hostId}`] },
      });
      return list.map((c) => ({
        instanceId: c.Labels[INSTANCE_LABEL]!,
        powerState: stateOfListed(c.State),
        ...(c.Labels[PROJECT_LABEL] ? { projectId: c.Labels[PROJECT_LABEL] } : {}),
      }));
    } catch (e) {
      throw wrapDockerError('list', e);
    }
  }

  /** Graceful stop (SIGTERM, then SIGKILL after `timeoutMs`, default `stopTimeoutSeconds`). */
  async powerOff(instance: Instance, options?: DriverCallOptions & { timeoutMs?: number }): Promise<void> {
    const t = Math.ceil((options?.timeoutMs ?? (this.options.stopTimeoutSeconds ?? 10) * 1000) / 1000);
    await this.call('stop', instance, options, (c, abortSignal) => c.stop({ t, abortSignal }), [304]);
  }

  async powerOn(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.call('start', instance, options, (c, abortSignal) => c.start({ abortSignal }), [304]);
  }

  /** Soft: `restart` (graceful stop within `stopTimeoutSeconds`); hard: kill, then start. */
  async reboot(instance: Instance, kind: 'soft' | 'hard', options?: DriverCallOptions): Promise<void> {
    if (kind === 'soft') {
      const t = this.options.stopTimeoutSeconds ?? 10;
      await this.call('restart', instance, options, (c, abortSignal) => c.restart({ t, abortSignal }));
      return;
    }
    await this.call('kill', instance, options, (c, abortSignal) => c.kill({ abortSignal }), [409]);
    await this.call('start', instance, options, (c, abortSignal) => c.start({ abortSignal }), [304]);
  }

  async pause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.call('pause', instance, options, (c, abortSignal) => c.pause({ abortSignal }));
  }

  async unpause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.call('unpause', instance, options, (c, abortSignal) => c.unpause({ abortSignal }));
  }

  /** Replaces the container with one from the new image, keeping name, labels and limits. */
  async rebuild(request: SpawnRequest): Promise<void> {
    request.signal?.throwIfAborted();
    const ref = await this.loader.ensure(request.image, request.images, request.signal);
    await this.destroy(request.instance, request);
    await untilAborted(
      this.inflight.track(request.instance.id, () =>
        this.createAndStart(request.instance, ref, request.image, request),
      ),
      request.signal,
    );
  }

  /**
   * Exports the container's filesystem (the `docker export` tar) into the image service, which
   * hashes it; the result boots with this driver like any tar image.
   */
  async snapshot(
    instance: Instance,
    options: DriverCallOptions & { name: string; images: ImageService },
  ): Promise<Image> {
    const { signal } = options;
    signal?.throwIfAborted();
    const container = this.docker.getContainer(containerName(instance.id));
    try {
      const importing = options.images.import(
        {
          name: options.name,
          diskFormat: 'tar',
          containerFormat: 'docker',
          properties: { hypervisorType: 'docker', sourceInstance: instance.id },
        },
        {
          kind: 'stream',
          open: async () =>
            (await container.export({ abortSignal: signal })) as unknown as import('node:stream').Readable,
        },
      );
      return await untilAborted(importing, signal);
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw wrapDockerError('snapshot', e, instance.id);
    }
  }

  /** The container's stdout and stderr (last `lines` lines when given). */
  async getConsoleOutput(instance: Instance, options?: { lines?: number }): Promise<string> {
    try {
      const buf = (await this.docker.getContainer(containerName(instance.id)).logs({
        stdout: true,
        stderr: true,
        follow: false,
        ...(options?.lines ? { tail: options.lines } : {}),
      })) as unknown as Buffer;
      return demuxLogs(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
    } catch (e) {
      throw wrapDockerError('logs', e, instance.id);
    }
  }

  /** Stops following dockerd's events and gives this driver's host scope back. Containers keep running. */
  async close(): Promise<void> {
    this.stream.close();
    if (this.daemonId) releaseHostScope(this.daemonId, this.hostId, this);
    this.daemonId = undefined;
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * Creates and starts the container. The create and start requests are not cut when the signal
   * aborts (their effect must be known to be undone): the signal is checked after each, and the
   * container removed if it aborted. The final inspect is cut on abort.
   */
  private async createAndStart(
    instance: Instance,
    ref: string,
    image: Image,
    request: SpawnRequest,
  ): Promise<void> {
    const { signal } = request;
    if (instance.flavor.ramMb < DOCKER_MIN_MEMORY_MB) {
      throw new DriverError(
        {
          driver: 'docker',
          operation: 'spawn',
          instanceId: instance.id,
          retryable: false,
          reschedule: false,
        },
        `flavor ${instance.flavor.id} has ${instance.flavor.ramMb} MiB of memory; Docker needs at least ${DOCKER_MIN_MEMORY_MB}`,
      );
    }
    const spec = containerSpec(instance, ref, image.properties, request.ports, {
      hostId: this.hostId,
      pidsLimit: this.options.pidsLimit ?? 1024,
      defaultCommand: this.options.defaultCommand ?? [
        'sh',
        '-c',
        'echo "nova-lfs: instance $NOVA_LFS_INSTANCE booted"; trap "exit 0" TERM; while true; do sleep 1; done',
      ],
    });
    let created: Dockerode.Container | undefined;
    try {
      signal?.throwIfAborted();
      created = await this.docker.createContainer(spec);
      signal?.throwIfAborted();
      await created.start();
      signal?.throwIfAborted();
      const info = await created.inspect({ abortSignal: signal });
      if (!info.State.Running)
        throw wrapDockerError(
          'spawn',
          new Error(`container exited at start (exit code ${info.State.ExitCode})`),
          instance.id,
          { retryable: false },
        );
    } catch (e) {
      if (created) await created.remove({ force: true, v: true }).catch(() => undefined);
      throw reasonIfAborted(signal, wrapDockerError('spawn', e, instance.id));
    }
  }

  /** One Engine API call on the instance's container, cut when the signal aborts. */
  private async call(
    operation: string,
    instance: Instance,
    options: DriverCallOptions | undefined,
    fn: (c: Dockerode.Container, abortSignal: AbortSignal | undefined) => Promise<unknown>,
    okStatuses: readonly number[] = [],
  ): Promise<void> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    try {
      await untilAborted(fn(this.docker.getContainer(containerName(instance.id)), signal), signal);
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (okStatuses.includes(dockerStatus(e) ?? -1)) return;
      throw wrapDockerError(operation, e, instance.id);
    }
  }
}

function stateOfListed(state: string): PowerState {
  switch (state) {
    case 'running':
    case 'restarting':
      return 'running';
    case 'paused':
      return 'paused';
    case 'dead':
      return 'crashed';
    default:
      return 'shutdown';
  }
}
