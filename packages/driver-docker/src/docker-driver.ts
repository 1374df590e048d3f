import { statfs } from 'node:fs/promises';
import {
  type ComputeDriver,
  type ConsoleReadable,
  type DriverCapabilities,
  type DriverInstance,
  defineCapabilities,
  type HostReport,
  type Image,
  type ImageService,
  type Instance,
  type Pausable,
  type PowerControl,
  type PowerState,
  type Rebootable,
  type Rebuildable,
  type Snapshottable,
  type SpawnRequest,
} from '@nova-lfs/core';
import Dockerode from 'dockerode';
import { demuxLogs } from './console-log.js';
import { containerSpec } from './container-spec.js';
import { DockerUnavailableError, dockerStatus, wrapDockerError } from './errors.js';
import { DockerEventStream } from './event-stream.js';
import { ImageLoader } from './image-loader.js';
import { containerName, HOST_LABEL, INSTANCE_LABEL, PROJECT_LABEL } from './labels.js';
import { powerStateOf } from './power-state.js';

/** Options of {@link DockerDriver}. */
export interface DockerDriverOptions {
  /** A dockerode client (default: one on `socketPath`). */
  readonly docker?: Dockerode;
  /** dockerd socket (default `/var/run/docker.sock`). */
  readonly socketPath?: string;
  /** Nova LFS host id this driver serves; scopes containers by label so several hosts may share one dockerd. */
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

  /** @throws DockerUnavailableError when dockerd does not answer. */
  async getHostReport(): Promise<HostReport> {
    let info: {
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

  async spawn(request: SpawnRequest): Promise<void> {
    await this.stream.open();
    const ref = await this.loader.ensure(request.image, request.images);
    await this.createAndStart(request.instance, ref, request.image, request);
  }

  async destroy(instance: Instance): Promise<void> {
    const container = this.docker.getContainer(containerName(instance.id));
    for (let attempt = 0; ; attempt++) {
      try {
        await container.remove({ force: true, v: true });
        return;
      } catch (e) {
        const status = dockerStatus(e);
        if (status === 404) return;
        if (status === 409 && attempt < 50) {
          await new Promise((r) => setTimeout(r, 100));
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

  async powerOff(instance: Instance, options?: { timeoutMs?: number }): Promise<void> {
    const t = Math.ceil((options?.timeoutMs ?? (this.options.stopTimeoutSeconds ?? 10) * 1000) / 1000);
    await this.call('stop', instance, (c) => c.stop({ t }), [304]);
  }

  async powerOn(instance: Instance): Promise<void> {
    await this.call('start', instance, (c) => c.start(), [304]);
  }

  async reboot(instance: Instance, kind: 'soft' | 'hard'): Promise<void> {
    if (kind === 'soft') {
      await this.call('restart', instance, (c) => c.restart({ t: this.options.stopTimeoutSeconds ?? 10 }));
      return;
    }
    await this.call('kill', instance, (c) => c.kill(), [409]);
    await this.call('start', instance, (c) => c.start(), [304]);
  }

  async pause(instance: Instance): Promise<void> {
    await this.call('pause', instance, (c) => c.pause());
  }

  async unpause(instance: Instance): Promise<void> {
    await this.call('unpause', instance, (c) => c.unpause());
  }

  /** Replaces the container with one from the new image, keeping name, labels and limits. */
  async rebuild(request: SpawnRequest): Promise<void> {
    const ref = await this.loader.ensure(request.image, request.images);
    await this.destroy(request.instance);
    await this.createAndStart(request.instance, ref, request.image, request);
  }

  /**
   * Exports the container's filesystem (the `docker export` tar) into the image service, which
   * hashes it; the result boots with this driver like any tar image.
   */
  async snapshot(instance: Instance, options: { name: string; images: ImageService }): Promise<Image> {
    const container = this.docker.getContainer(containerName(instance.id));
    try {
      return await options.images.import(
        {
          name: options.name,
          diskFormat: 'tar',
          containerFormat: 'docker',
          properties: { hypervisorType: 'docker', sourceInstance: instance.id },
        },
        {
          kind: 'stream',
          open: async () => (await container.export()) as unknown as import('node:stream').Readable,
        },
      );
    } catch (e) {
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

  async close(): Promise<void> {
    this.stream.close();
  }

  // ---- internals -----------------------------------------------------------------------------

  private async createAndStart(
    instance: Instance,
    ref: string,
    image: Image,
    request: SpawnRequest,
  ): Promise<void> {
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
      created = await this.docker.createContainer(spec);
      await created.start();
      const info = await created.inspect();
      if (!info.State.Running)
        throw new Error(`container exited at start (exit code ${info.State.ExitCode})`);
    } catch (e) {
      if (created) await created.remove({ force: true, v: true }).catch(() => undefined);
      throw wrapDockerError('spawn', e, instance.id);
    }
  }

  private async call(
    operation: string,
    instance: Instance,
    fn: (c: Dockerode.Container) => Promise<unknown>,
    okStatuses: readonly number[] = [],
  ): Promise<void> {
    try {
      await fn(this.docker.getContainer(containerName(instance.id)));
    } catch (e) {
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
