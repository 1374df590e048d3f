import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, rename, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type BlockDevice,
  type ComputeDriver,
  type DriverCallOptions,
  type DriverCapabilities,
  type DriverInstance,
  type Flavor,
  type HostReport,
  type Image,
  type ImageService,
  type Instance,
  type PortBinding,
  type PowerState,
  type PowerStateEvent,
  type SpawnRequest,
  ValidationError,
} from '@nova-lfs/core';
import {
  type ColdMigratable,
  type ConsoleReadable,
  defineCapabilities,
  type FinishMigrationRequest,
  type ForceCompleteMode,
  InflightWork,
  type InterfaceAttachable,
  type LiveMigratable,
  type LiveMigrationOptions,
  type LiveMigrationResult,
  type MigratedDisks,
  type MigrationTarget,
  type Pausable,
  type PowerControl,
  type Rebootable,
  type Rescuable,
  type RescueRequest,
  type Snapshottable,
  type Suspendable,
  abortableDelay as sleep,
  untilAborted,
  type VolumeAttachable,
} from '@nova-lfs/core/ports';
import {
  type Connection,
  DeviceModifyFlags,
  type Domain,
  DomainEventType,
  DomainState,
  DomainXmlFlags,
  type LifecycleSubscription,
  UndefineFlags,
} from '@nova-lfs/libvirt';
import { filter, firstValueFrom, type Observable } from 'rxjs';
import { DeviceRelease, DeviceReleaseError } from './device-release.js';
import { type DiskDevice, diskDeviceXml, domainDisks, freeDiskTarget } from './device-xml.js';
import { captureDiskImage, snapshotImageProperties } from './disk-snapshot.js';
import type { DiskSpec, DomainSpec } from './domain-spec.js';
import { buildDomainXml, parseInstanceMetadata } from './domain-xml.js';
import {
  isNoDomain,
  KvmErrorCode,
  LibvirtUnreachableError,
  UnsupportedImageError,
  wrapLibvirtError,
} from './errors.js';
import { claimHostScope, releaseHostScope } from './host-scope.js';
import { domainInterfaces, interfaceDeviceXml, nicOfPort } from './interface-xml.js';
import { type LibvirtConnector, openLibvirt } from './libvirt-binding.js';
import { KvmLiveMigration, type KvmLiveMigrationOptions } from './live-migration.js';
import { keepBootFile, PinnedBases } from './pinned-bases.js';
import { powerStateOfDomain } from './power-state.js';
import { PowerWatch } from './power-watch.js';
import { createOverlay, rebaseOverlay } from './qemu-img.js';

/** How long a live detach waits for the guest to let the device go. */
const RELEASE_TIMEOUT_MS = 30_000;
/** Options of {@link KvmDriver}. */
export interface KvmDriverOptions {
  /** libvirt URI (default `qemu:///system`). */
  readonly uri?: string;
  /** `kvm` (hardware virtualization) or `qemu` (TCG emulation; default). */
  readonly virtType?: 'kvm' | 'qemu';
  /**
   * Nova LFS host id (default `kvm`): domains carry it in their `<metadata>`, so several hosts may
   * share one libvirtd, each with its own hostId. Keep it stable across restarts (reconciliation
   * finds a host's domains by it). Two live drivers of one process with the same hostId on one
   * libvirtd (same URI and hostname) are refused when the second reads its host report
   * (`KvmScopeConflictError`, a `ConfigurationError`).
   */
  readonly hostId?: string;
  /** Where per-instance files live (default `/var/lib/nova-lfs/kvm`). */
  readonly stateDir?: string;
  /** Machine type (default `pc`). */
  readonly machine?: string;
  /**
   * Interval of the safety-net power-state poll in ms (default 30,000; 2,000 with
   * `lifecycleEvents: false`). Changes are reported from libvirt's lifecycle events as they
   * happen; the poll catches what an event could not tell (e.g. while libvirtd restarted).
   */
  readonly pollIntervalMs?: number;
  /**
   * Report power-state changes from libvirt's lifecycle events (default true). `false` leaves only
   * the poll (the behaviour before events; the benchmark's baseline).
   */
  readonly lifecycleEvents?: boolean;
  /** Graceful shutdown wait before a cold migration, resize or rescue forces the guest off, in ms (default 60,000). */
  readonly moveShutdownTimeoutMs?: number;
  /** Graceful shutdown wait in a soft reboot before a forced restart, in ms (default 5,000). */
  readonly softRebootTimeoutMs?: number;
  /** Default kernel command line for direct kernel boot (default `console=ttyS0`). */
  readonly kernelCmdline?: string;
  /** Opens the libvirt connection (default `Connection.open` of `@nova-lfs/libvirt`). */
  readonly connect?: LibvirtConnector;
  /**
   * Live migration: how other hosts reach this one (`migrationUri`, default `uri`), the address
   * and port of incoming migration streams (default `127.0.0.1`, a port from libvirtd's range),
   * the progress interval. See `live-migration.ts`.
   */
  readonly liveMigration?: Pick<
    KvmLiveMigrationOptions,
    'migrationUri' | 'migrationAddress' | 'migrationPort' | 'progressIntervalMs'
  >;
}

/** What the KVM driver can do. */
export const kvmCapabilities = defineCapabilities({
  powerControl: true,
  reboot: true,
  pause: true,
  suspend: true,
  consoleOutput: true,
  liveMigration: true,
  volumeAttach: true,
  interfaceAttach: true,
  coldMigration: true,
  rescue: true,
  snapshot: true,
}) satisfies DriverCapabilities;

/**
 * Virtual machines through libvirt and QEMU. Domains are named and identified by the instance
 * uuid and carry the project and host in `<metadata>`; disks are qcow2 overlays on cached base
 * images; images with a kernel and initramfs boot directly; the serial console is appended to a
 * file. Power state is polled (the binding has no event API) and changes are emitted on `events$`.
 *
 * Every call honours `options.signal`: it stops waiting as soon as the signal aborts and rejects
 * with its reason (graceful-shutdown waits and `qemu-img` are cut; a libvirt call already made is
 * let finish, since the binding cannot cancel one). A spawn that aborts removes what it made once
 * its libvirt call returns, and a `destroy` of that instance waits for that clean-up first, so
 * nothing is left behind. Errors are `DriverError`s with `retryable` (lost connection, busy
 * daemon) and `reschedule: false` for what no host can fix (an image it cannot boot or whose
 * bytes fail their sha256, a configuration libvirt calls unsupported such as too many vCPUs).
 */
export class KvmDriver
  implements
    ComputeDriver,
    PowerControl,
    Rebootable,
    Pausable,
    Suspendable,
    ConsoleReadable,
    LiveMigratable,
    VolumeAttachable,
    InterfaceAttachable,
    ColdMigratable,
    Rescuable,
    Snapshottable
{
  readonly kind = 'kvm';
  readonly capabilities: DriverCapabilities = kvmCapabilities;
  readonly hostId: string;
  readonly uri: string;
  readonly stateDir: string;
  private readonly watch = new PowerWatch((id) => this.resolvePowerState(id));
  /** Power-state changes not caused by this driver's calls: from libvirt's lifecycle events, and the safety-net poll. */
  readonly events$: Observable<PowerStateEvent> = this.watch.events$;
  private conn: Promise<Connection> | undefined;
  private lifecycle: LifecycleSubscription | undefined;
  private poller: NodeJS.Timeout | undefined;
  private polling = false;
  /** Spawns still talking to libvirtd, by instance id (their callers may have left). */
  private readonly inflight = new InflightWork();
  /** The libvirtd (URI and hostname) whose scope this driver claimed in its host report. */
  private scopeDaemon: string | undefined;

  /** Live migration (live-migration.ts), on this driver's connection. */
  private readonly migration: KvmLiveMigration;
  /** The base images the overlays back onto, pinned out of the image service's cache (pinned-bases.ts). */
  private readonly bases: PinnedBases;

  constructor(private readonly options: KvmDriverOptions = {}) {
    this.uri = options.uri ?? 'qemu:///system';
    this.hostId = options.hostId ?? 'kvm';
    this.stateDir = options.stateDir ?? '/var/lib/nova-lfs/kvm';
    this.bases = new PinnedBases(this.stateDir);
    this.migration = new KvmLiveMigration({
      ...options.liveMigration,
      uri: this.uri,
      hostId: this.hostId,
      instanceDir: (id) => this.instanceDir(id),
      connection: () => this.connection(),
    });
  }

  /** The instance's private directory (console log, overlay, saved state). */
  instanceDir(instanceId: string): string {
    return join(this.stateDir, this.hostId, instanceId);
  }

  /** libvirt domain name of an instance. */
  static domainName(instanceId: string): string {
    return `nova-${instanceId}`;
  }

  // ---- required -------------------------------------------------------------------------------

  /**
   * Reads the node's resources and claims this driver's metadata scope on that libvirtd.
   * @throws LibvirtBindingUnavailableError (with the binding's load error), LibvirtUnreachableError
   * @throws KvmScopeConflictError when another live driver of this process serves the same hostId
   *   on the same libvirtd.
   */
  async getHostReport(): Promise<HostReport> {
    const conn = await this.connection();
    let node: Awaited<ReturnType<Connection['nodeInfo']>>;
    let hostname: string;
    try {
      node = await conn.nodeInfo();
      hostname = await conn.hostname();
    } catch (e) {
      throw wrapLibvirtError('getHostReport', e);
    }
    const daemon = `${this.uri} on ${hostname}`;
    claimHostScope(daemon, this.hostId, this);
    this.scopeDaemon = daemon;
    await mkdir(this.stateDir, { recursive: true, mode: 0o755 });
    const fs = await statfs(this.stateDir);
    this.startPolling();
    return {
      hostname,
      hypervisorType: this.options.virtType ?? 'qemu',
      architecture: node.model,
      inventory: {
        VCPU: { total: node.cpus, reserved: 0, allocationRatio: 1 },
        MEMORY_MB: { total: Math.floor(node.memoryKiB / 1024), reserved: 0, allocationRatio: 1 },
        DISK_GB: { total: Math.floor((fs.blocks * fs.bsize) / 2 ** 30), reserved: 0, allocationRatio: 1 },
      },
      traits: [`COMPUTE_VIRT_${(this.options.virtType ?? 'qemu').toUpperCase()}`],
    };
  }

  /**
   * Writes the overlay, defines and starts the domain; resolves once it runs.
   * @throws DriverError (classified, see the class doc); the signal's reason when it aborts.
   */
  async spawn(request: SpawnRequest): Promise<void> {
    request.signal?.throwIfAborted();
    await untilAborted(
      this.inflight.track(request.instance.id, () =>
        this.watch.during(request.instance.id, () => this.defineAndStart(request)),
      ),
      request.signal,
    );
  }

  /**
   * Removes the domain (forced off), its definition and its directory; resolves if there is none.
   * Waits first for a spawn of the instance still talking to libvirtd (so what it makes goes too).
   */
  async destroy(instance: Instance, options?: DriverCallOptions): Promise<void> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    await this.inflight.settled(instance.id, signal);
    await untilAborted(
      this.watch.during(instance.id, () => this.remove(instance)),
      signal,
    );
  }

  private async remove(instance: Instance): Promise<void> {
    this.watch.forget(instance.id);
    await this.withDomain(instance.id, async (domain) => {
      try {
        const info = await domain.info();
        if (info.state !== DomainState.Shutoff) await domain.destroy().catch(ignoreNotRunning);
        // a suspended guest's managed save image and any snapshot metadata go with it
        await domain.undefine(UndefineFlags.ManagedSave | UndefineFlags.SnapshotsMetadata);
      } catch (e) {
        if (!isNoDomain(e)) throw wrapLibvirtError('destroy', e, instance.id);
      }
    });
    await rm(this.instanceDir(instance.id), { recursive: true, force: true });
    await this.bases.prune().catch(() => undefined);
  }

  async getPowerState(instance: Instance): Promise<PowerState> {
    const state = await this.withDomain(instance.id, async (domain) => {
      try {
        return await powerStateOf(domain);
      } catch (e) {
        if (isNoDomain(e)) return 'nostate';
        throw wrapLibvirtError('getInfo', e, instance.id);
      }
    });
    return state ?? 'nostate';
  }

  async listInstances(): Promise<DriverInstance[]> {
    const conn = await this.connectionFor('list');
    const out: DriverInstance[] = [];
    let domains: Domain[] = [];
    try {
      domains = await conn.listAllDomains();
      for (const domain of domains) {
        const meta = parseInstanceMetadata(await domain.xml());
        if (!meta || meta.hostId !== this.hostId) continue;
        out.push({
          instanceId: meta.instanceId,
          powerState: await powerStateOf(domain),
          projectId: meta.projectId,
        });
      }
    } catch (e) {
      throw wrapLibvirtError('list', e);
    } finally {
      await Promise.allSettled(domains.map((d) => d.free()));
    }
    return out;
  }

  // ---- optional operations ---------------------------------------------------------------------

  /** ACPI shutdown, waiting up to `timeoutMs` (default 60 s), then a forced power-off. */
  async powerOff(instance: Instance, options?: DriverCallOptions & { timeoutMs?: number }): Promise<void> {
    await this.act('powerOff', instance, options, async (domain, signal) => {
      await this.shutdownOrDestroy(domain, instance.id, options?.timeoutMs ?? 60_000, signal);
      this.watch.set(instance.id, 'shutdown');
    });
  }

  async powerOn(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.act('powerOn', instance, options, async (domain) => {
      await this.step('powerOn', instance.id, () => domain.start());
      this.watch.set(instance.id, 'running');
    });
  }

  /** Soft: ACPI shutdown (forced after `softRebootTimeoutMs`) then start; hard: power cycle at once. */
  async reboot(instance: Instance, kind: 'soft' | 'hard', options?: DriverCallOptions): Promise<void> {
    const timeout = kind === 'soft' ? (this.options.softRebootTimeoutMs ?? 5_000) : 0;
    await this.act('reboot', instance, options, async (domain, signal) => {
      await this.shutdownOrDestroy(domain, instance.id, timeout, signal);
      signal?.throwIfAborted();
      await this.step('reboot', instance.id, () => domain.start());
      this.watch.set(instance.id, 'running');
    });
  }

  async pause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.act('pause', instance, options, async (domain) => {
      await this.step('pause', instance.id, () => domain.suspend());
      this.watch.set(instance.id, 'paused');
    });
  }

  async unpause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.act('unpause', instance, options, async (domain) => {
      await this.step('unpause', instance.id, () => domain.resume());
      this.watch.set(instance.id, 'running');
    });
  }

  /** Saves memory and device state to libvirt's managed save image and stops the domain (`virDomainManagedSave`). */
  async suspend(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.act('suspend', instance, options, async (domain) => {
      this.watch.set(instance.id, 'suspended');
      await this.step('suspend', instance.id, () => domain.managedSave());
    });
  }

  /** Starts the domain from its managed save image (libvirt removes the image once restored). */
  async resume(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.act('resume', instance, options, async (domain) => {
      if (!(await domain.hasManagedSaveImage()))
        throw wrapLibvirtError('resume', new Error('the guest is not suspended'), instance.id, {
          retryable: false,
        });
      await this.step('resume', instance.id, () => domain.start());
      this.watch.set(instance.id, 'running');
    });
  }

  /**
   * Captures the instance's root disk (its overlay merged with the base) into the image service as
   * a standalone qcow2 image, hashed (sha256) by the service. A running guest is paused for the
   * copy and resumed before the import (see `captureDiskImage`); a paused or shut-off one stays
   * so. The image keeps the properties of the image the instance booted from (kernel, initramfs,
   * command line), so it boots the same way (an unshelve), plus `imageType: snapshot` and
   * `sourceInstance`. Volumes are not in it (as in Nova).
   * @throws DriverError (not retryable, no reschedule) wrapping an `UnsupportedImageError` for a
   *   guest without a disk (an initramfs-only image); DriverError when libvirt or `qemu-img`
   *   fails; the signal's reason when it aborts (nothing is left in the service then).
   */
  async snapshot(
    instance: Instance,
    options: DriverCallOptions & { name: string; images: ImageService },
  ): Promise<Image> {
    const dir = this.instanceDir(instance.id);
    const disk = join(dir, 'disk.qcow2');
    let image: Image | undefined;
    try {
      await this.act('snapshot', instance, options, async (domain, signal) => {
        if (!existsSync(disk))
          throw new UnsupportedImageError(instance.imageId, 'the guest has no disk to snapshot');
        const original = await options.images.get(instance.imageId);
        image = await captureDiskImage({
          domain,
          disk,
          workDir: dir,
          images: options.images,
          name: options.name,
          properties: snapshotImageProperties(instance.id, original),
          signal,
        });
      });
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw wrapLibvirtError('snapshot', e, instance.id);
    }
    return image!;
  }

  /** The serial console log (last `lines` lines when given). */
  async getConsoleOutput(instance: Instance, options?: { lines?: number }): Promise<string> {
    let text: string;
    try {
      text = await readFile(this.consolePath(instance.id), 'utf8');
    } catch {
      return '';
    }
    if (!options?.lines) return text;
    return text
      .split('\n')
      .slice(-options.lines - 1)
      .join('\n');
  }

  // ---- live migration (LiveMigratable; see live-migration.ts) ---------------------------------

  /** Destination side: makes the instance's directory here and says how to reach this host. */
  prepareLiveMigrationTarget(instance: Instance, options?: DriverCallOptions): Promise<MigrationTarget> {
    return this.migration.prepareLiveMigrationTarget(instance, options);
  }

  /** Source side: refuses early with a `KvmLiveMigrationRefusedError` naming the reason. */
  checkLiveMigration(
    instance: Instance,
    target: MigrationTarget,
    options?: DriverCallOptions,
  ): Promise<void> {
    return this.migration.checkLiveMigration(instance, target, options);
  }

  /** Source side: moves the running guest; its lifecycle events meanwhile are this call's own. */
  liveMigrate(
    instance: Instance,
    target: MigrationTarget,
    options?: LiveMigrationOptions,
  ): Promise<LiveMigrationResult> {
    return this.watch.during(instance.id, async () => {
      const result = await this.migration.liveMigrate(instance, target, options);
      this.watch.forget(instance.id);
      return result;
    });
  }

  /** Source side: aborts the running migration; the guest stays here. */
  abortLiveMigration(instance: Instance): Promise<void> {
    return this.migration.abortLiveMigration(instance);
  }

  /** Source side: post-copy or a raised downtime for a migration that does not converge. */
  forceCompleteLiveMigration(instance: Instance, mode: ForceCompleteMode): Promise<void> {
    return this.migration.forceCompleteLiveMigration(instance, mode);
  }

  /** Destination side: removes what a failed or aborted migration left here. Idempotent. */
  rollbackLiveMigrationTarget(instance: Instance, options?: DriverCallOptions): Promise<void> {
    return this.migration.rollbackLiveMigrationTarget(instance, options);
  }

  /**
   * Hot-plugs a volume's file as a virtio disk (`virDomainAttachDeviceFlags`: live and persistent
   * while the guest runs, persistent only when it is shut off). The guest device is the block
   * device's `device`, else the first free `vdX`; resolves the target it got. Idempotent: a file
   * already attached is left as it is (its target resolved).
   * @throws ValidationError naming `connection.type`, `connection.path`, `connection.format` or
   *   `device` (taken by another disk, or no free `vdX`); DriverError when libvirt refuses.
   */
  async attachVolume(instance: Instance, device: BlockDevice): Promise<string> {
    const file = fileOfBlockDevice(device);
    return this.act('attachVolume', instance, undefined, async (domain) => {
      const disks = domainDisks(await domain.xml(DomainXmlFlags.Inactive));
      const live = (await domain.isActive()) ? domainDisks(await domain.xml()) : [];
      const there = live.find((d) => d.path === file.path) ?? disks.find((d) => d.path === file.path);
      if (there) return there.target;
      const target = device.device ?? freeDiskTarget(disks.map((d) => d.target));
      if (!target || disks.some((d) => d.target === target))
        throw new ValidationError([
          {
            path: 'device',
            rule: 'free',
            message: `guest device ${target ?? 'vdb..vdz'} is taken on ${instance.id}`,
          },
        ]);
      const disk: DiskDevice = { ...file, target };
      const flags = (await domain.isActive())
        ? DeviceModifyFlags.Live | DeviceModifyFlags.Config
        : DeviceModifyFlags.Config;
      await this.step('attachVolume', instance.id, () => domain.attachDevice(diskDeviceXml(disk), flags));
      return target;
    });
  }

  /**
   * Unplugs a volume's disk from the running guest and from the persistent definition
   * (`virDomainDetachDeviceFlags`) and resolves once the guest has let it go (gone from the live
   * definition). Idempotent: a file not attached is a no-op.
   * @throws ValidationError naming `connection.*`; DriverError when libvirt refuses or the guest
   *   does not release the disk within 30 s.
   */
  async detachVolume(instance: Instance, device: BlockDevice): Promise<void> {
    const file = fileOfBlockDevice(device);
    await this.act('detachVolume', instance, undefined, async (domain) => {
      const active = await domain.isActive();
      const liveDisk = active ? domainDisks(await domain.xml()).find((d) => d.path === file.path) : undefined;
      const savedDisk = domainDisks(await domain.xml(DomainXmlFlags.Inactive)).find(
        (d) => d.path === file.path,
      );
      const flags = (liveDisk ? DeviceModifyFlags.Live : 0) | (savedDisk ? DeviceModifyFlags.Config : 0);
      const target = liveDisk?.target ?? savedDisk?.target;
      if (!flags || !target) return;
      const xml = diskDeviceXml({ ...file, target });
      await this.detachLive(
        instance,
        domain,
        'detachVolume',
        target,
        liveDisk?.alias,
        liveDisk !== undefined,
        {
          detach: () => domain.detachDevice(xml, flags),
          present: (live) => domainDisks(live).some((d) => d.path === file.path),
        },
      );
    });
  }

  /**
   * Hot-plugs a port as a virtio NIC (`virDomainAttachDeviceFlags`: live and persistent while the
   * guest runs, persistent only when it is shut off): a tap libvirt creates (`binding.tap`, else
   * `tap` + the port id's first 11 characters), on `binding.bridge` when `binding.vifType` is
   * `bridge`. Idempotent: a NIC with the port's MAC already there is left as it is.
   * @throws ValidationError naming `macAddress` or `binding.*`; DriverError when libvirt refuses
   *   (e.g. the tap name is taken on the host).
   */
  async attachInterface(instance: Instance, port: PortBinding): Promise<void> {
    const nic = nicOfPort(port);
    await this.act('attachInterface', instance, undefined, async (domain) => {
      const active = await domain.isActive();
      const has = (xml: string) => domainInterfaces(xml).some((i) => i.mac === nic.mac);
      if (has(await domain.xml(DomainXmlFlags.Inactive)) || (active && has(await domain.xml()))) return;
      const flags = active ? DeviceModifyFlags.Live | DeviceModifyFlags.Config : DeviceModifyFlags.Config;
      await this.step('attachInterface', instance.id, () =>
        domain.attachDevice(interfaceDeviceXml(nic), flags),
      );
    });
  }

  /**
   * Unplugs the port's NIC (found by its MAC) from the running guest and from the persistent
   * definition, and resolves once the guest has let it go (libvirt then removes the tap).
   * Idempotent: a NIC that is not there is a no-op.
   * @throws ValidationError naming `macAddress` or `binding.*`; DriverError when libvirt refuses or
   *   the guest does not release the NIC within 30 s.
   */
  async detachInterface(instance: Instance, port: PortBinding): Promise<void> {
    const nic = nicOfPort(port);
    await this.act('detachInterface', instance, undefined, async (domain) => {
      const mine = (xml: string) => domainInterfaces(xml).find((i) => i.mac === nic.mac);
      const live = (await domain.isActive()) ? mine(await domain.xml()) : undefined;
      const saved = mine(await domain.xml(DomainXmlFlags.Inactive));
      const flags = (live ? DeviceModifyFlags.Live : 0) | (saved ? DeviceModifyFlags.Config : 0);
      if (!flags) return;
      await this.detachLive(instance, domain, 'detachInterface', nic.mac, live?.alias, live !== undefined, {
        detach: () => domain.detachDevice(interfaceDeviceXml(nic), flags),
        present: (xml) => mine(xml) !== undefined,
      });
    });
  }

  // ---- cold migration and resize (ColdMigratable) ---------------------------------------------
  // The source keeps the instance directory as `<dir>_resize` (disk, console log, the domain's
  // XML) until the move is confirmed or reverted; the destination (the same host for a resize in
  // place) gets a copy of the disk in its own instance directory, rebased on its own image cache.

  /** Destination side: says where the disk goes (this host's instance directory) and whether it is the source too. */
  async prepareColdMigrationTarget(
    instance: Instance,
    _flavor: Flavor,
    options?: DriverCallOptions,
  ): Promise<MigrationTarget> {
    options?.signal?.throwIfAborted();
    return {
      hostId: this.hostId,
      driverKind: this.kind,
      sameHost: instance.hostId === this.hostId,
      params: { uri: this.uri, hostId: this.hostId, instanceDir: this.instanceDir(instance.id) },
    };
  }

  /**
   * Source side: powers the guest off (ACPI, forced after `moveShutdownTimeoutMs`), keeps its
   * definition and directory as `<dir>_resize` for a revert, undefines the domain and copies its
   * disk into the destination's instance directory (a filesystem both hosts read; the same one here).
   * @throws ValidationError naming `target.params.instanceDir` when the target has none.
   */
  async migrateDisksAndPowerOff(
    instance: Instance,
    target: MigrationTarget,
    options?: DriverCallOptions,
  ): Promise<MigratedDisks> {
    const destDir = target.params.instanceDir;
    if (!destDir?.startsWith('/'))
      throw new ValidationError([
        {
          path: 'target.params.instanceDir',
          rule: 'absolute',
          message: 'the destination instance directory',
        },
      ]);
    const dir = this.instanceDir(instance.id);
    const kept = keptDir(dir);
    let disk = '';
    await this.act('migrateDisksAndPowerOff', instance, options, async (domain, signal) => {
      await this.shutdownOrDestroy(domain, instance.id, this.options.moveShutdownTimeoutMs ?? 60_000, signal);
      const xml = await domain.xml(DomainXmlFlags.Inactive);
      await rm(kept, { recursive: true, force: true });
      await rename(dir, kept);
      await writeFile(join(kept, 'domain.xml'), xml);
      await this.step('migrateDisksAndPowerOff', instance.id, () =>
        domain.undefine(UndefineFlags.ManagedSave | UndefineFlags.SnapshotsMetadata),
      );
      this.watch.forget(instance.id);
      await mkdir(destDir, { recursive: true, mode: 0o755 });
      if (existsSync(join(kept, 'disk.qcow2'))) {
        disk = join(destDir, 'disk.qcow2');
        await copyFile(join(kept, 'disk.qcow2'), disk);
      }
    });
    return { params: { disk, keptDir: kept } };
  }

  /** Destination side: defines the guest on the moved disk with `flavor` (new vCPUs and memory) and starts it if asked. */
  async finishMigration(request: FinishMigrationRequest): Promise<void> {
    const { instance, signal } = request;
    signal?.throwIfAborted();
    const dir = this.instanceDir(instance.id);
    await this.watch.during(instance.id, async () => {
      const conn = await this.connectionFor('finishMigration', instance.id);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      const spec = await this.domainSpec(request, dir, {
        existingOverlay: Boolean(request.disks.params.disk),
      });
      const domain = await this.callLibvirt('finishMigration', instance.id, () =>
        conn.defineXML(buildDomainXml(spec)),
      );
      try {
        if (request.powerOn) await this.step('finishMigration', instance.id, () => domain.start());
        this.watch.set(instance.id, request.powerOn ? 'running' : 'shutdown');
      } finally {
        await domain.free().catch(() => undefined);
      }
    });
  }

  /** Source side: deletes the copy kept for a revert. Idempotent. */
  async confirmMigration(instance: Instance, options?: DriverCallOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    await rm(keptDir(this.instanceDir(instance.id)), { recursive: true, force: true });
    await this.bases.prune().catch(() => undefined);
  }

  /** Destination side of a revert: removes the new guest and its directory, never the kept copy. Idempotent. */
  async revertMigrationOnDestination(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.destroy(instance, options);
  }

  /** Source side of a revert: the kept directory back in place, the domain redefined from its kept XML (old flavor), started if asked. */
  async finishRevertMigration(
    instance: Instance,
    powerOn: boolean,
    options?: DriverCallOptions,
  ): Promise<void> {
    options?.signal?.throwIfAborted();
    const dir = this.instanceDir(instance.id);
    const kept = keptDir(dir);
    await this.watch.during(instance.id, async () => {
      if (!existsSync(kept)) {
        if ((await this.getPowerState(instance)) !== 'nostate') return; // reverted already
        throw wrapLibvirtError('finishRevertMigration', new Error(`no kept copy at ${kept}`), instance.id, {
          retryable: false,
        });
      }
      const xml = await readFile(join(kept, 'domain.xml'), 'utf8');
      await rm(dir, { recursive: true, force: true });
      await rename(kept, dir);
      await rm(join(dir, 'domain.xml'), { force: true });
      const conn = await this.connectionFor('finishRevertMigration', instance.id);
      const domain = await this.callLibvirt('finishRevertMigration', instance.id, () => conn.defineXML(xml));
      try {
        if (powerOn) await this.step('finishRevertMigration', instance.id, () => domain.start());
        this.watch.set(instance.id, powerOn ? 'running' : 'shutdown');
      } finally {
        await domain.free().catch(() => undefined);
      }
    });
  }

  // ---- rescue (Rescuable) ----------------------------------------------------------------------

  /**
   * Boots the rescue image with the instance's own disk as the next disk (`vdb` behind a rescue
   * disk image; the guest names disks in order): the domain is forced off, its definition kept as
   * `unrescue.xml` in the instance directory and replaced by the rescue one.
   */
  async rescue(request: RescueRequest): Promise<void> {
    const { instance, signal } = request;
    const dir = this.instanceDir(instance.id);
    await this.act('rescue', instance, request, async (domain) => {
      if (existsSync(join(dir, 'unrescue.xml'))) return; // rescued already
      const xml = await domain.xml(DomainXmlFlags.Inactive);
      const original = existsSync(join(dir, 'disk.qcow2'))
        ? [{ path: join(dir, 'disk.qcow2'), format: 'qcow2' as const }]
        : [];
      const spec = await this.domainSpec(
        {
          instance,
          flavor: request.flavor,
          image: request.rescueImage,
          images: request.images,
          volumes: [],
          ...(signal ? { signal } : {}),
        },
        dir,
        { overlay: 'rescue.qcow2', extraDisks: original },
      );
      await this.shutdownOrDestroy(domain, instance.id, 0, undefined);
      await writeFile(join(dir, 'unrescue.xml'), xml);
      const conn = await this.connectionFor('rescue', instance.id);
      const rescued = await this.callLibvirt('rescue', instance.id, () =>
        conn.defineXML(buildDomainXml(spec)),
      );
      try {
        await this.step('rescue', instance.id, () => rescued.start());
      } finally {
        await rescued.free().catch(() => undefined);
      }
      this.watch.set(instance.id, 'running');
    });
  }

  /** Stops the rescue guest and boots the instance from its own definition again; removes the rescue disk. */
  async unrescue(instance: Instance, options?: DriverCallOptions): Promise<void> {
    const dir = this.instanceDir(instance.id);
    await this.act('unrescue', instance, options, async (domain) => {
      const saved = join(dir, 'unrescue.xml');
      if (!existsSync(saved)) return; // not rescued
      await this.shutdownOrDestroy(domain, instance.id, 0, undefined);
      const conn = await this.connectionFor('unrescue', instance.id);
      const restored = await this.callLibvirt('unrescue', instance.id, async () =>
        conn.defineXML(await readFile(saved, 'utf8')),
      );
      try {
        await this.step('unrescue', instance.id, () => restored.start());
      } finally {
        await restored.free().catch(() => undefined);
      }
      await rm(saved, { force: true });
      await rm(join(dir, 'rescue.qcow2'), { force: true });
      await this.bases.prune().catch(() => undefined);
      this.watch.set(instance.id, 'running');
    });
  }

  /** Stops polling, closes the connection and gives this driver's host scope back. Domains keep running. */
  async close(): Promise<void> {
    await this.migration.close();
    if (this.scopeDaemon) releaseHostScope(this.scopeDaemon, this.hostId, this);
    this.scopeDaemon = undefined;
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
    this.watch.close();
    const conn = this.conn;
    this.conn = undefined;
    await this.lifecycle?.close().catch(() => undefined);
    this.lifecycle = undefined;
    if (conn) await (await conn.catch(() => undefined))?.close().catch(() => undefined);
  }

  /** Polls every domain of this host once and emits changed power states. */
  async pollOnce(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const g of await this.listInstances()) this.watch.observe(g.instanceId, g.powerState);
    } catch {
      // libvirtd restarting: the next tick retries
    } finally {
      this.polling = false;
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  private consolePath(instanceId: string): string {
    return join(this.instanceDir(instanceId), 'console.log');
  }

  private get eventsOn(): boolean {
    return this.options.lifecycleEvents !== false;
  }

  /** Starts the safety-net poll; its first round, at once, learns this host's instances. */
  private startPolling(): void {
    if (this.poller) return;
    const interval = this.options.pollIntervalMs ?? (this.eventsOn ? 30_000 : 2_000);
    this.poller = setInterval(() => void this.pollOnce(), interval);
    this.poller.unref();
    void this.pollOnce();
  }

  /** The connection, opened once, with this driver's lifecycle-event subscription. */
  private async connection(): Promise<Connection> {
    if (!this.conn) {
      this.conn = (async () => {
        let conn: Connection;
        try {
          conn = await openLibvirt(this.uri, this.options.connect);
        } catch (e) {
          if ((e as { code?: string })?.code === KvmErrorCode.BindingUnavailable) throw e;
          throw new LibvirtUnreachableError(this.uri, { cause: e });
        }
        if (this.eventsOn) {
          try {
            this.lifecycle = await conn.subscribeLifecycle((e) => this.watch.onLifecycle(e));
          } catch (e) {
            await conn.close().catch(() => undefined);
            throw new LibvirtUnreachableError(this.uri, { cause: e });
          }
        }
        return conn;
      })();
      this.conn.catch(() => {
        this.conn = undefined;
      });
    }
    return this.conn;
  }

  /**
   * What the power watch asks about a domain it does not know or that was undefined: its power
   * state if it is one of this host's instances, `nostate` if it is gone, `undefined` if not ours.
   */
  private async resolvePowerState(instanceId: string): Promise<PowerState | undefined> {
    const found = await this.withDomain(instanceId, async (domain) => {
      const meta = parseInstanceMetadata(await domain.xml());
      return meta?.hostId === this.hostId ? await powerStateOf(domain) : null;
    });
    if (found === undefined) return 'nostate';
    return found ?? undefined;
  }

  /** The connection, its failure wrapped as a classified `DriverError` of `operation`. */
  private async connectionFor(operation: string, instanceId?: string): Promise<Connection> {
    try {
      return await this.connection();
    } catch (e) {
      throw wrapLibvirtError(operation, e, instanceId);
    }
  }

  /**
   * Runs `spawn`'s steps, checking the signal between them; on failure or abort, removes what it
   * made and rethrows (the signal's reason when it aborted).
   */
  private async defineAndStart(request: SpawnRequest): Promise<void> {
    const { instance, signal } = request;
    const dir = this.instanceDir(instance.id);
    let domain: Domain | undefined;
    try {
      const conn = await this.connectionFor('spawn', instance.id);
      signal?.throwIfAborted();
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await chmod(dir, 0o755);
      const spec = await this.domainSpec(request, dir);
      signal?.throwIfAborted();
      domain = await conn.defineXML(buildDomainXml(spec));
      signal?.throwIfAborted();
      await domain.start();
      signal?.throwIfAborted();
      this.watch.set(instance.id, 'running');
    } catch (e) {
      if (domain) {
        await domain.destroy().catch(() => undefined);
        await domain.undefine(UndefineFlags.ManagedSave).catch(() => undefined);
      }
      this.watch.forget(instance.id);
      await rm(dir, { recursive: true, force: true });
      if (signal?.aborted) throw signal.reason;
      throw wrapLibvirtError('spawn', e, instance.id);
    } finally {
      await domain?.free().catch(() => undefined);
    }
  }

  /** An action on an existing domain: refused at once if aborted, and not waited for past an abort. */
  /**
   * Runs a device's `detach`; when it was in the running guest (`live`), resolves once the guest
   * has let it go: libvirt's device-removed event for its `alias` (watched from before the detach),
   * with the live definition read again as a safety net ({@link DeviceRelease}).
   * @throws DriverError when libvirt refuses, or the guest refuses or does not release it in 30 s.
   */
  private async detachLive(
    instance: Instance,
    domain: Domain,
    operation: string,
    device: string,
    alias: string | undefined,
    live: boolean,
    steps: { detach: () => Promise<void>; present: (liveXml: string) => boolean },
  ): Promise<void> {
    const release = live
      ? await DeviceRelease.watch(await this.connectionFor(operation, instance.id), domain, alias)
      : undefined;
    try {
      await this.step(operation, instance.id, steps.detach);
    } catch (e) {
      await release?.close();
      throw e;
    }
    await release?.until(steps.present, RELEASE_TIMEOUT_MS).catch((e: unknown) => {
      if (!(e instanceof DeviceReleaseError)) throw e;
      const message =
        e.reason === 'refused'
          ? `the guest refused to release ${device}`
          : `the guest did not release ${device} within ${RELEASE_TIMEOUT_MS / 1000} s`;
      throw wrapLibvirtError(operation, new Error(message), instance.id);
    });
  }

  private async act<T = void>(
    operation: string,
    instance: Instance,
    options: DriverCallOptions | undefined,
    fn: (domain: Domain, signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    const work = async () => {
      const found = await this.watch.during(instance.id, () =>
        this.withDomain(instance.id, async (domain) => ({ value: await fn(domain, signal) })),
      );
      if (!found)
        throw wrapLibvirtError(operation, new Error('no such domain'), instance.id, { retryable: false });
      return found.value;
    };
    return untilAborted(work(), signal);
  }

  /**
   * Runs `fn` with the instance's domain handle and frees the handle afterwards; resolves
   * `undefined` without calling `fn` when there is no such domain.
   */
  private async withDomain<T>(
    instanceId: string,
    fn: (domain: Domain) => Promise<T>,
  ): Promise<T | undefined> {
    const conn = await this.connectionFor('lookup', instanceId);
    let domain: Domain;
    try {
      domain = await conn.lookupByUUID(instanceId);
    } catch (e) {
      if (isNoDomain(e)) return undefined;
      throw wrapLibvirtError('lookup', e, instanceId);
    }
    try {
      return await fn(domain);
    } finally {
      await domain.free().catch(() => undefined);
    }
  }

  private async callLibvirt<T>(operation: string, instanceId: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw wrapLibvirtError(operation, e, instanceId);
    }
  }

  private async step(operation: string, instanceId: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      throw wrapLibvirtError(operation, e, instanceId);
    }
  }

  /**
   * ACPI shutdown, waiting up to `timeoutMs` for the domain's `stopped` lifecycle event, then a
   * forced stop; the wait ends when `signal` aborts. The state is also read every second (every
   * 100 ms without events), so a lost event costs at most that.
   */
  private async shutdownOrDestroy(
    domain: Domain,
    instanceId: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const state = async () => (await domain.info()).state;
    if ((await state()) === DomainState.Shutoff) return;
    if (timeoutMs > 0) {
      signal?.throwIfAborted();
      let stopped: Promise<unknown> | undefined = firstValueFrom(
        this.watch.lifecycle$.pipe(
          filter((e) => e.domainUuid === domain.uuid && e.event === DomainEventType.Stopped),
        ),
        { defaultValue: undefined },
      ).then(() => {
        stopped = undefined; // seen once; then only the timed re-reads
      });
      await domain.shutdown().catch(() => undefined);
      const end = Date.now() + timeoutMs;
      const recheckMs = this.eventsOn ? 1_000 : 100;
      while (Date.now() < end) {
        signal?.throwIfAborted();
        if ((await state()) === DomainState.Shutoff) return;
        const wait = Math.min(recheckMs, Math.max(0, end - Date.now()));
        await Promise.race(stopped ? [stopped, sleep(wait, signal)] : [sleep(wait, signal)]);
      }
    }
    signal?.throwIfAborted();
    await this.step('destroy', instanceId, () => domain.destroy().catch(ignoreNotRunning));
  }

  /**
   * Turns the request into a domain spec: overlay disk and/or direct kernel boot. Image fetches
   * are not waited for past an abort (they go on filling the cache); `qemu-img` is killed.
   */
  private async domainSpec(request: SpecRequest, dir: string, o: SpecOptions = {}): Promise<DomainSpec> {
    const { instance, image, images, signal } = request;
    const props = image.properties;
    const disks: DiskSpec[] = [];
    // kernel and initramfs are booted from the instance's own links to them (see keepBootFile)
    const acquire = async (id: string) => {
      const cached = await untilAborted(images.acquire(id), signal);
      return keepBootFile(cached.path, cached.image.sha256, dir);
    };
    let kernel: string | undefined;
    let initrd: string | undefined;
    if (image.diskFormat === 'qcow2' || image.diskFormat === 'raw') {
      const format = image.diskFormat;
      const cached = await untilAborted(images.acquire(image.id), signal);
      const overlay = join(dir, o.overlay ?? 'disk.qcow2');
      // the overlay backs onto the driver's pin of the bytes, which outlives the image's removal
      await this.bases.with(cached.path, cached.image.sha256, async (base) => {
        if (o.existingOverlay) await rebaseOverlay(overlay, base, format);
        else await createOverlay(base, format, overlay, signal);
      });
      disks.push({ path: overlay, format: 'qcow2', target: 'vda' });
    } else if (image.diskFormat === 'initramfs') {
      initrd = await acquire(image.id);
    } else {
      throw new UnsupportedImageError(image.id, `disk format ${image.diskFormat}`);
    }
    if (props.kernelImageId) kernel = await acquire(props.kernelImageId);
    if (props.ramdiskImageId) initrd = await acquire(props.ramdiskImageId);
    if (initrd && !kernel) throw new UnsupportedImageError(image.id, 'an initramfs needs kernelImageId');
    for (const d of o.extraDisks ?? [])
      disks.push({ ...d, target: freeDiskTarget(['vda', ...disks.map((x) => x.target)]) ?? 'vdz' });
    for (const v of request.volumes) {
      const file = fileOfBlockDevice(v);
      const target = v.device ?? freeDiskTarget(['vda', ...disks.map((d) => d.target)]);
      if (!target)
        throw new ValidationError([{ path: 'volumes', rule: 'max', message: 'no free vdX device' }]);
      disks.push({ ...file, target });
    }
    return {
      name: KvmDriver.domainName(instance.id),
      uuid: instance.id,
      virtType: this.options.virtType ?? 'qemu',
      memoryMiB: (request.flavor ?? instance.flavor).ramMb,
      vcpus: (request.flavor ?? instance.flavor).vcpus,
      arch: props.architecture ?? 'x86_64',
      machine: this.options.machine ?? 'pc',
      ...(kernel
        ? { kernel, cmdline: props.kernelCmdline ?? this.options.kernelCmdline ?? 'console=ttyS0' }
        : {}),
      ...(initrd ? { initrd } : {}),
      disks,
      nics: (request.ports ?? instance.ports ?? []).map(nicOfPort),
      serialLogPath: this.consolePath(instance.id),
      metadata: {
        instanceId: instance.id,
        projectId: instance.projectId,
        hostId: this.hostId,
        displayName: instance.name,
        flavorId: (request.flavor ?? instance.flavor).id,
        imageId: image.id,
      },
    };
  }
}

/** Where the source keeps an instance's directory during a cold migration or resize. */
function keptDir(dir: string): string {
  return `${dir}_resize`;
}

/** What a domain spec is built from: a spawn request, or the same fields of a move or rescue. */
type SpecRequest = Pick<SpawnRequest, 'instance' | 'image' | 'images' | 'volumes' | 'signal'> & {
  readonly flavor?: SpawnRequest['flavor'];
  /** A spawn's ports; a move or rescue plugs the ports the instance records. */
  readonly ports?: SpawnRequest['ports'];
};

/** How {@link KvmDriver} builds a spec beyond a plain spawn. */
interface SpecOptions {
  /** File name of the image's overlay in the directory (default `disk.qcow2`). */
  readonly overlay?: string;
  /** The overlay is already there (a moved disk): rebase it onto this host's base, do not create it. */
  readonly existingOverlay?: boolean;
  /** Disks after the image's own (a rescue's original disk), at the next free `vdX`. */
  readonly extraDisks?: readonly Omit<DiskSpec, 'target'>[];
}

/**
 * The file and format a volume adapter's block device names (`connection: { type: 'file', path,
 * format }`, as `@nova-lfs/volume-local` makes them).
 * @throws ValidationError naming the connection field that is missing or wrong.
 */
function fileOfBlockDevice(device: BlockDevice): Omit<DiskDevice, 'target'> {
  const { type, path, format } = device.connection;
  const issues = [
    ...(type === 'file'
      ? []
      : [{ path: 'connection.type', rule: 'enum', message: `only file volumes (got ${type})` }]),
    ...(path?.startsWith('/')
      ? []
      : [{ path: 'connection.path', rule: 'absolute', message: 'an absolute path' }]),
    ...(format === 'raw' || format === 'qcow2'
      ? []
      : [{ path: 'connection.format', rule: 'enum', message: 'raw or qcow2' }]),
  ];
  if (issues.length) throw new ValidationError(issues);
  return { path: path as string, format: format as 'raw' | 'qcow2' };
}

/**
 * Waits until the guest has released a device libvirt was asked to detach: libvirt returns before
 * the guest lets it go, and the binding delivers no device-removed event yet, so the live
 * definition is read until `present` says it is gone (every 50 ms, at most 30 s).
 */

/** A domain's power state: `suspended` for a shut-off domain with a managed save image. */
async function powerStateOf(domain: Domain): Promise<PowerState> {
  const { state } = await domain.info();
  if (state === DomainState.Shutoff && (await domain.hasManagedSaveImage())) return 'suspended';
  return powerStateOfDomain(state);
}

function ignoreNotRunning(e: unknown): void {
  if (/not running|domain is not running/i.test((e as Error)?.message ?? '')) return;
  throw e;
}
