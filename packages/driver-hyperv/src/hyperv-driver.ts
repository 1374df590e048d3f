import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  type ComputeDriver,
  type DriverCallOptions,
  type DriverCapabilities,
  DriverError,
  type DriverInstance,
  type HostReport,
  type Image,
  type Instance,
  type LocalArtifact,
  type PowerState,
  type PowerStateEvent,
  type SpawnRequest,
} from '@nova-lfs/core';
import {
  defineCapabilities,
  type Pausable,
  type PowerControl,
  type Rebootable,
  type Rebuildable,
  type Suspendable,
  throwIfCallAborted,
} from '@nova-lfs/core/ports';
import { type Observable, Subject } from 'rxjs';
import { z } from 'zod';
import { parseResult, type ScriptArgs } from './command.js';
import { HyperVCommandError, HyperVSettingError, wrapHyperVError } from './errors.js';
import type { ScriptName } from './scripts.js';
import { HyperVShell, type HyperVShellOptions, type HyperVSshOptions } from './ssh-shell.js';
import { fixedVhdFooter, vhdDataBytes } from './vhd.js';

/**
 * What the Hyper-V driver does: power control (graceful Stop-VM then turn-off, Start-VM), reboot
 * (Restart-VM), pause (Suspend-VM / Resume-VM), suspend (Save-VM / Start-VM) and rebuild (a new
 * differencing disk over the new image). Off: snapshot (a Checkpoint-VM checkpoint is a Hyper-V
 * restore point, not an image the image service could hand to another host; exporting one would
 * need a merge and a download of the disk, which is not built), console output (Hyper-V has no
 * console log to read; a COM port goes to a named pipe only while someone reads it), volume and
 * interface hot-plug, live migration (Move-VM is not built).
 */
export const hyperVCapabilities = defineCapabilities({
  powerControl: true,
  reboot: true,
  pause: true,
  suspend: true,
  rebuild: true,
}) satisfies DriverCapabilities;

/** Prefix of every VM name the driver makes: `nova-<instance uuid>`. */
export const VM_PREFIX = 'nova-';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The Hyper-V VM name of an instance (only its uuid goes in). */
export function vmName(instanceId: string): string {
  return `${VM_PREFIX}${instanceId.toLowerCase()}`;
}

/** What the driver writes into a VM's Notes, as JSON, so listInstances can find its instances. */
export const vmNotesSchema = z.object({
  'nova-lfs': z.object({ instanceId: z.string().regex(UUID), projectId: z.string(), hostId: z.string() }),
});
/** What the driver writes into a VM's Notes. */
export type VmNotes = z.output<typeof vmNotesSchema>;

/** Reads a VM's Notes; undefined when they are not the driver's. */
export function parseVmNotes(notes: string): VmNotes['nova-lfs'] | undefined {
  try {
    const r = vmNotesSchema.safeParse(JSON.parse(notes));
    return r.success ? r.data['nova-lfs'] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Hyper-V `VMState` names to power states. Transitional states report where the VM still is;
 * the `*Critical` states (its storage is unreachable) are `crashed`.
 */
export function powerStateOf(state: string): PowerState {
  if (state.endsWith('Critical')) return 'crashed';
  switch (state) {
    case 'Running':
    case 'Starting':
    case 'Reset':
    case 'Stopping':
    case 'Pausing':
    case 'Saving':
    case 'FastSaving':
    case 'ForceShutdown':
    case 'ForceReboot':
      return 'running';
    case 'Paused':
    case 'Resuming':
      return 'paused';
    case 'Saved':
    case 'FastSaved':
      return 'suspended';
    case 'Off':
      return 'shutdown';
    default:
      return 'nostate';
  }
}

const vmSchema = z.object({
  Name: z.string(),
  Id: z.string(),
  State: z.string(),
  Notes: z
    .string()
    .nullable()
    .transform((n) => n ?? ''),
  ProcessorCount: z.number().int(),
  MemoryStartup: z.number(),
});
const vmResultSchema = z.object({ VM: vmSchema });
const listSchema = z.object({ VMs: z.array(vmSchema) });
const getSchema = z.discriminatedUnion('Found', [
  z.object({ Found: z.literal(true), VM: vmSchema }),
  z.object({ Found: z.literal(false) }),
]);
const hostSchema = z.object({
  ComputerName: z.string(),
  LogicalProcessorCount: z.number().int().positive(),
  MemoryCapacity: z.number().positive(),
  Architecture: z.string(),
  OsVersion: z.string(),
  DiskSize: z.number().nonnegative(),
  DiskFree: z.number().nonnegative(),
});
const statSchema = z.discriminatedUnion('Exists', [
  z.object({ Exists: z.literal(true), Length: z.number(), Sha256: z.string().nullable() }),
  z.object({ Exists: z.literal(false) }),
]);
const okSchema = z.object({}).passthrough();

/** Options of {@link HyperVDriver}. */
export interface HyperVDriverOptions extends HyperVShellOptions {
  /** This host's id, recorded in each VM's Notes; listInstances reports only this host's VMs. */
  readonly hostId: string;
  /** How to reach the Hyper-V host. */
  readonly ssh: HyperVSshOptions;
  /** Directory on the host for the instances' differencing disks, e.g. `C:\NovaLFS\instances`. */
  readonly diskRoot: string;
  /** Directory on the host for base images (`<sha256>.vhd`), e.g. `C:\NovaLFS\images`. */
  readonly imageRoot: string;
  /**
   * Maps a host path to the path the host's SFTP server takes. Default: `C:\x\y` becomes
   * `/C:/x/y` (Windows OpenSSH), anything else is used as it is.
   */
  readonly sftpPath?: (hostPath: string) => string;
  /** Graceful stop time for powerOff without `timeoutMs` and for soft reboot, in s. Default 60. */
  readonly stopTimeoutSeconds?: number;
  /** Memory kept back for the host's own use in MiB (MEMORY_MB reserved). Default 2,048. */
  readonly reservedHostMemoryMb?: number;
}

function joinHostPath(root: string, name: string): string {
  const sep = root.includes('\\') || /^[A-Za-z]:/.test(root) ? '\\' : '/';
  return root.endsWith(sep) ? `${root}${name}` : `${root}${sep}${name}`;
}

function defaultSftpPath(hostPath: string): string {
  if (/^[A-Za-z]:[\\/]/.test(hostPath)) return `/${hostPath.replace(/\\/g, '/')}`;
  return hostPath;
}

const ARCHITECTURES: Record<string, string> = { AMD64: 'x86_64', ARM64: 'aarch64', X86: 'i686' };

/**
 * Nova LFS compute driver for Hyper-V: runs the driver's fixed PowerShell scripts (Hyper-V
 * module cmdlets) over OpenSSH with `ssh2`, every value passed as base64 JSON data inside
 * `-EncodedCommand` (see `scripts.ts`, `command.ts`), every answer read as JSON and checked with
 * zod, every PowerShell error mapped to a typed `DriverError`.
 *
 * Tested only against the project's FAKE Hyper-V host (a real sshd whose forced command emulates
 * the cmdlets): the README says what that proves and what it does not.
 *
 * Images: disk format `raw` (container format `bare`), uploaded once per sha256 over SFTP as a
 * fixed VHD (the raw bytes padded to 1 MiB plus a VHD footer) into `imageRoot`, checked by
 * Get-FileHash on the host; each instance boots a generation 1 VM from a differencing disk over
 * it in `diskRoot`.
 */
export class HyperVDriver
  implements ComputeDriver, PowerControl, Rebootable, Pausable, Suspendable, Rebuildable
{
  readonly kind = 'hyperv';
  readonly capabilities = hyperVCapabilities;
  private readonly events = new Subject<PowerStateEvent>();
  /**
   * Power events: Hyper-V's come from WMI, which this driver does not subscribe to over SSH; this
   * stream emits nothing (the engine's reconciler reads states through listInstances).
   */
  readonly events$: Observable<PowerStateEvent> = this.events.asObservable();
  private readonly shell: HyperVShell;
  private readonly uploads = new Map<string, Promise<string>>();
  private readonly sftpPath: (hostPath: string) => string;

  constructor(private readonly options: HyperVDriverOptions) {
    if (!options.hostId) throw new HyperVSettingError('hostId', 'hostId is required');
    for (const key of ['diskRoot', 'imageRoot'] as const) {
      const v = options[key];
      if (!v || /[\0\r\n]/.test(v))
        throw new HyperVSettingError(key, `${key} must be a path without line breaks`);
    }
    this.shell = new HyperVShell(options.ssh, options);
    this.sftpPath = options.sftpPath ?? defaultSftpPath;
  }

  private checkedId(instance: Instance, operation: string): string {
    if (!UUID.test(instance.id))
      throw new DriverError(
        { driver: 'hyperv', operation, instanceId: instance.id, retryable: false, reschedule: false },
        'instance id is not a uuid',
      );
    return instance.id.toLowerCase();
  }

  private diskPath(id: string): string {
    return joinHostPath(this.options.diskRoot, `${vmName(id)}.vhd`);
  }

  private notes(instance: Instance): string {
    const notes: VmNotes = {
      'nova-lfs': {
        instanceId: instance.id.toLowerCase(),
        projectId: instance.projectId,
        hostId: this.options.hostId,
      },
    };
    return JSON.stringify(notes);
  }

  private async call<T>(
    script: ScriptName,
    args: ScriptArgs,
    schema: z.ZodType<T>,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<T> {
    const run = await this.shell.run(script, args, options);
    return parseResult(script, run, schema);
  }

  /** Host facts from Get-VMHost, the OS and the disk of `diskRoot`. */
  async getHostReport(): Promise<HostReport> {
    try {
      const h = await this.call('host-report', { diskRoot: this.options.diskRoot }, hostSchema);
      const diskGb = Math.floor(h.DiskSize / 2 ** 30);
      return {
        hostname: h.ComputerName,
        hypervisorType: 'hyperv',
        architecture: ARCHITECTURES[h.Architecture.toUpperCase()] ?? h.Architecture.toLowerCase(),
        inventory: {
          VCPU: { total: h.LogicalProcessorCount, reserved: 0, allocationRatio: 1 },
          MEMORY_MB: {
            total: Math.floor(h.MemoryCapacity / 2 ** 20),
            reserved: this.options.reservedHostMemoryMb ?? 2048,
            allocationRatio: 1,
          },
          ...(diskGb > 0 ? { DISK_GB: { total: diskGb, reserved: 0, allocationRatio: 1 } } : {}),
        },
        traits: ['COMPUTE_STATUS_ENABLED', 'CUSTOM_HYPERV_GEN1'],
      };
    } catch (e) {
      throw wrapHyperVError('getHostReport', e);
    }
  }

  private checkImage(image: Image, operation: string, instanceId: string): void {
    if (image.diskFormat !== 'raw' || image.containerFormat !== 'bare')
      throw new DriverError(
        { driver: 'hyperv', operation, instanceId, retryable: false, reschedule: false },
        `image ${image.id} is ${image.diskFormat}/${image.containerFormat}; this driver boots raw/bare disk images`,
      );
  }

  /**
   * The host path of the image's fixed VHD in `imageRoot`, uploading it first when the host does
   * not have it (once per sha256 in this process; a part file committed by `image-commit` after
   * Get-FileHash checked it).
   */
  private baseDisk(artifact: LocalArtifact, signal?: AbortSignal): Promise<string> {
    const key = artifact.image.sha256;
    let p = this.uploads.get(key);
    if (!p) {
      // not bound to one caller's signal: an upload shared by several spawns runs to its end
      p = this.uploadBase(artifact).finally(() => this.uploads.delete(key));
      this.uploads.set(key, p);
    }
    return signal ? raceSignal(p, signal) : p;
  }

  private async uploadBase(artifact: LocalArtifact): Promise<string> {
    const sha = artifact.image.sha256;
    const path = joinHostPath(this.options.imageRoot, `${sha}.vhd`);
    const rawBytes = (await stat(artifact.path)).size;
    const dataBytes = vhdDataBytes(rawBytes);
    const footer = fixedVhdFooter(dataBytes, sha);
    const existing = await this.call('file-stat', { path, hash: false }, statSchema);
    if (existing.Exists && existing.Length === dataBytes + footer.length) return path;
    const hash = createHash('sha256');
    const source = Readable.from(
      (async function* () {
        for await (const chunk of createReadStream(artifact.path)) {
          hash.update(chunk as Buffer);
          yield chunk as Buffer;
        }
        const pad = Buffer.alloc(dataBytes - rawBytes);
        hash.update(pad);
        yield pad;
        hash.update(footer);
        yield footer;
      })(),
    );
    const part = `${path}.${randomUUID()}.part`;
    try {
      await this.shell.upload(source, this.sftpPath(part));
      await this.call('image-commit', { part, path, sha256: hash.digest('hex') }, okSchema);
    } catch (e) {
      await this.call('file-remove', { path: part }, okSchema).catch(() => undefined);
      throw e;
    }
    return path;
  }

  /**
   * Uploads the image if the host lacks it, then creates and starts the VM `nova-<uuid>` (see the
   * `spawn` script). An aborted spawn rejects with the signal's reason at once; the host may still
   * finish the script, and a destroy then waits for it (per-VM mutex) and removes the VM.
   */
  async spawn(request: SpawnRequest): Promise<void> {
    throwIfCallAborted(request);
    const { instance, image, images, signal } = request;
    const id = this.checkedId(instance, 'spawn');
    try {
      this.checkImage(image, 'spawn', id);
      const artifact = await raceSignal(images.acquire(image.id), signal);
      const parentPath = await this.baseDisk(artifact, signal);
      await this.call(
        'spawn',
        {
          instanceId: id,
          name: vmName(id),
          diskPath: this.diskPath(id),
          parentPath,
          memoryBytes: Math.ceil(request.flavor.ramMb / 2) * 2 * 2 ** 20, // Hyper-V wants 2 MiB steps
          vcpus: request.flavor.vcpus,
          notes: this.notes(instance),
        },
        vmResultSchema,
        signal ? { signal } : {},
      );
    } catch (e) {
      if (signal?.aborted && e === signal.reason) throw e;
      throw wrapHyperVError('spawn', e, id);
    }
  }

  /** Turns the VM off and removes it and its differencing disk. Resolves when it does not exist. */
  async destroy(instance: Instance, options?: DriverCallOptions): Promise<void> {
    throwIfCallAborted(options);
    const id = this.checkedId(instance, 'destroy');
    try {
      await this.call(
        'destroy',
        { instanceId: id, name: vmName(id), diskPath: this.diskPath(id), diskRoot: this.options.diskRoot },
        okSchema,
        options?.signal ? { signal: options.signal } : {},
      );
    } catch (e) {
      if (e instanceof HyperVCommandError && e.kind === 'notFound') return;
      if (options?.signal?.aborted && e === options.signal.reason) throw e;
      throw wrapHyperVError('destroy', e, id);
    }
  }

  /** The VM's power state; `nostate` when there is none (or it belongs to another hostId). */
  async getPowerState(instance: Instance): Promise<PowerState> {
    if (!UUID.test(instance.id)) return 'nostate';
    const id = instance.id.toLowerCase();
    try {
      const r = await this.call('get', { name: vmName(id) }, getSchema);
      if (!r.Found) return 'nostate';
      const notes = parseVmNotes(r.VM.Notes);
      if (notes && notes.hostId !== this.options.hostId) return 'nostate';
      return powerStateOf(r.VM.State);
    } catch (e) {
      throw wrapHyperVError('getPowerState', e, id);
    }
  }

  /** Every `nova-*` VM whose Notes name this hostId, with its instance uuid, project and state. */
  async listInstances(): Promise<DriverInstance[]> {
    try {
      const r = await this.call('list', {}, listSchema);
      const out: DriverInstance[] = [];
      for (const vm of r.VMs) {
        const notes = parseVmNotes(vm.Notes);
        if (!notes || notes.hostId !== this.options.hostId || vm.Name !== vmName(notes.instanceId)) continue;
        out.push({
          instanceId: notes.instanceId,
          projectId: notes.projectId,
          powerState: powerStateOf(vm.State),
        });
      }
      return out;
    } catch (e) {
      throw wrapHyperVError('listInstances', e);
    }
  }

  private async power(
    instance: Instance,
    operation: string,
    op: string,
    options: (DriverCallOptions & { timeoutMs?: number }) | undefined,
    stopSeconds = 0,
  ): Promise<void> {
    throwIfCallAborted(options);
    const id = this.checkedId(instance, operation);
    const signal = options?.signal;
    try {
      await this.call(
        'power',
        { instanceId: id, name: vmName(id), op, timeoutSeconds: stopSeconds },
        vmResultSchema,
        {
          ...(signal ? { signal } : {}),
          timeoutMs: (this.options.commandTimeoutMs ?? 120_000) + stopSeconds * 1000,
        },
      );
    } catch (e) {
      if (signal?.aborted && e === signal.reason) throw e;
      throw wrapHyperVError(operation, e, id);
    }
  }

  private stopSeconds(timeoutMs?: number): number {
    return timeoutMs === undefined ? (this.options.stopTimeoutSeconds ?? 60) : Math.ceil(timeoutMs / 1000);
  }

  /** Graceful Stop-VM within `timeoutMs` (default `stopTimeoutSeconds`), then turned off. */
  powerOff(instance: Instance, options?: DriverCallOptions & { timeoutMs?: number }): Promise<void> {
    return this.power(instance, 'powerOff', 'powerOff', options, this.stopSeconds(options?.timeoutMs));
  }

  /** Start-VM (Resume-VM when paused); nothing when it runs. */
  powerOn(instance: Instance, options?: DriverCallOptions): Promise<void> {
    return this.power(instance, 'powerOn', 'powerOn', options);
  }

  /** Hard: Restart-VM -Force (a reset). Soft: graceful stop within `stopTimeoutSeconds`, then Start-VM. */
  reboot(instance: Instance, kind: 'soft' | 'hard', options?: DriverCallOptions): Promise<void> {
    return kind === 'hard'
      ? this.power(instance, 'reboot', 'rebootHard', options)
      : this.power(instance, 'reboot', 'rebootSoft', options, this.stopSeconds());
  }

  /** Suspend-VM: frozen in memory. */
  pause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    return this.power(instance, 'pause', 'pause', options);
  }

  /** Resume-VM. */
  unpause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    return this.power(instance, 'unpause', 'unpause', options);
  }

  /** Save-VM: memory saved to disk, VM state `Saved`. */
  suspend(instance: Instance, options?: DriverCallOptions): Promise<void> {
    return this.power(instance, 'suspend', 'suspend', options);
  }

  /** Start-VM of a saved VM. */
  resume(instance: Instance, options?: DriverCallOptions): Promise<void> {
    return this.power(instance, 'resume', 'resume', options);
  }

  /** Turns the VM off, replaces its differencing disk by one over the new image, starts it. */
  async rebuild(request: SpawnRequest): Promise<void> {
    throwIfCallAborted(request);
    const { instance, image, images, signal } = request;
    const id = this.checkedId(instance, 'rebuild');
    try {
      this.checkImage(image, 'rebuild', id);
      const artifact = await raceSignal(images.acquire(image.id), signal);
      const parentPath = await this.baseDisk(artifact, signal);
      await this.call(
        'rebuild',
        {
          instanceId: id,
          name: vmName(id),
          diskPath: this.diskPath(id),
          parentPath,
          notes: this.notes(instance),
        },
        vmResultSchema,
        signal ? { signal } : {},
      );
    } catch (e) {
      if (signal?.aborted && e === signal.reason) throw e;
      throw wrapHyperVError('rebuild', e, id);
    }
  }

  /** Closes the SSH connection. VMs keep running. */
  async close(): Promise<void> {
    this.events.complete();
    await this.shell.close();
  }
}

function raceSignal<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
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
