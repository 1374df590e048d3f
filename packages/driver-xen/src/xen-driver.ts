import { mkdir, readFile, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  ComputeDriver,
  DriverCallOptions,
  DriverCapabilities,
  DriverInstance,
  HostReport,
  Instance,
  PowerState,
  PowerStateEvent,
  SpawnRequest,
} from '@nova-lfs/core';
import {
  abortableDelay,
  type ConsoleReadable,
  defineCapabilities,
  InflightWork,
  type Pausable,
  type PowerControl,
  type Rebootable,
  type Suspendable,
  untilAborted,
} from '@nova-lfs/core/ports';
import {
  Connection,
  type Domain,
  DomainEventType,
  type DomainLifecycleEvent,
  DomainState,
  isLibvirtError,
  UndefineFlags,
  VirErrorNumber,
} from '@nova-lfs/libvirt';
import { type Observable, Subject, type Subscription } from 'rxjs';
import type { XenDiskSpec, XenDomainSpec, XenGuestType } from './domain-spec.js';
import { buildXenDomainXml, parseXenInstanceMetadata } from './domain-xml.js';
import {
  isNoDomain,
  isNotRunning,
  wrapXenError,
  XenUnreachableError,
  XenUnsupportedImageError,
} from './errors.js';
import { ImageStage } from './image-stage.js';
import { powerStateOfXenDomain } from './power-state.js';
import { waitForLifecycle } from './wait-lifecycle.js';

/** Options of {@link XenDriver}. */
export interface XenDriverOptions {
  /**
   * libvirt URI of the libxl driver (default `xen:///system`, for a driver running in dom0). The
   * project's nested test Xen is reached as `xen+tcp://127.0.0.1:PORT/system`.
   */
  readonly uri?: string;
  /** Nova LFS host id (default `xen`), kept in each domain's `<metadata>`; keep it stable. */
  readonly hostId?: string;
  /**
   * A folder this process writes and dom0 reads (default `/var/lib/nova-lfs/xen`): image files
   * are staged there for libxl's direct kernel boot.
   */
  readonly stateDir?: string;
  /** The same folder as dom0 sees it (default: `stateDir`, the driver runs in dom0). */
  readonly dom0StateDir?: string;
  /**
   * Where xenconsoled writes guest console logs (`xenconsoled --log=guest --log-dir=DIR`) as this
   * process sees it (default `/var/log/xen/console`); each guest's is `guest-<domain name>.log`.
   */
  readonly consoleLogDir?: string;
  /** Guest type when the image has no `vmMode` property (default `pv`). */
  readonly guestType?: XenGuestType;
  /** Kernel command line when the image has none (default `console=hvc0`). */
  readonly kernelCmdline?: string;
  /** How long a suspend keeps trying while a PV guest's kernel does not answer yet (default 120,000 ms). */
  readonly suspendTimeoutMs?: number;
  /** How long a soft reboot waits for the guest to come back before a hard one (default 60,000 ms). */
  readonly softRebootTimeoutMs?: number;
}

/** What the Xen driver can do. */
export const xenCapabilities = defineCapabilities({
  powerControl: true,
  reboot: true,
  pause: true,
  suspend: true,
  consoleOutput: true,
}) satisfies DriverCapabilities;

/** Nova's `vm_mode` image property values (`vmMode` here) and the guest types they name. */
const VM_MODES: Readonly<Record<string, XenGuestType>> = { xen: 'pv', pv: 'pv', pvh: 'pvh', hvm: 'hvm' };

/**
 * Xen domains (PV, PVH, HVM) through libvirt's libxl driver, over the project's own binding
 * (`@nova-lfs/libvirt`). Domains are named `nova-<instance uuid>`, carry project and host in
 * `<metadata>`, boot their kernel and initramfs directly (staged where dom0 reads them) or an HVM
 * disk; the console is xenconsoled's guest log. Power changes the engine did not cause come from
 * libvirt's lifecycle events (each event triggers a read of the domain's real state, which is
 * compared with the last state this driver saw or set; events while one of its own actions works on
 * the domain are not reported). Suspend is libvirt's managed save.
 *
 * Every call honours `options.signal` (it stops waiting and rejects with the reason; a libvirt call
 * already made is let finish). A spawn that aborts removes what it made once its call returns,
 * and a `destroy` of that instance waits for that first. Failures are `DriverError`s: images and
 * values no host can take with `reschedule: false`, a lost connection `retryable`.
 */
export class XenDriver
  implements ComputeDriver, PowerControl, Rebootable, Pausable, Suspendable, ConsoleReadable
{
  readonly kind = 'xen';
  readonly capabilities: DriverCapabilities = xenCapabilities;
  readonly hostId: string;
  readonly uri: string;
  readonly stateDir: string;
  private readonly subject = new Subject<PowerStateEvent>();
  readonly events$: Observable<PowerStateEvent> = this.subject.asObservable();
  private readonly lifecycle = new Subject<DomainLifecycleEvent>();
  private conn: Promise<Connection> | undefined;
  private events: Subscription | undefined;
  private readonly lastSeen = new Map<string, PowerState>();
  private readonly ours = new Map<string, boolean>();
  /** Instances an action of this driver is working on, with the number of such actions. */
  private readonly acting = new Map<string, number>();
  private readonly inflight = new InflightWork();
  private readonly stage: ImageStage;
  private closed = false;

  constructor(private readonly options: XenDriverOptions = {}) {
    this.uri = options.uri ?? 'xen:///system';
    this.hostId = options.hostId ?? 'xen';
    this.stateDir = options.stateDir ?? '/var/lib/nova-lfs/xen';
    this.stage = new ImageStage(
      join(this.stateDir, 'images'),
      join(options.dom0StateDir ?? this.stateDir, 'images'),
    );
  }

  /** libvirt domain name of an instance. */
  static domainName(instanceId: string): string {
    return `nova-${instanceId}`;
  }

  // ---- required -------------------------------------------------------------------------------

  /**
   * Reads the Xen host's resources (`virNodeGetInfo` through libxl) and starts listening to
   * lifecycle events. @throws DriverError (retryable) when libvirt does not answer.
   */
  async getHostReport(): Promise<HostReport> {
    const conn = await this.connectionFor('hostReport');
    try {
      const node = await conn.nodeInfo();
      const hostname = await conn.hostname();
      await mkdir(this.stateDir, { recursive: true, mode: 0o755 });
      const fs = await statfs(this.stateDir);
      return {
        hostname,
        hypervisorType: 'xen',
        architecture: node.model,
        inventory: {
          VCPU: { total: node.cpus, reserved: 0, allocationRatio: 1 },
          MEMORY_MB: { total: Math.floor(node.memoryKiB / 1024), reserved: 0, allocationRatio: 1 },
          DISK_GB: { total: Math.floor((fs.blocks * fs.bsize) / 2 ** 30), reserved: 0, allocationRatio: 1 },
        },
        traits: ['COMPUTE_VIRT_XEN'],
      };
    } catch (e) {
      throw wrapXenError('hostReport', e);
    }
  }

  /** Stages the image files, defines and starts the domain; resolves once it runs. */
  async spawn(request: SpawnRequest): Promise<void> {
    request.signal?.throwIfAborted();
    await untilAborted(
      this.inflight.track(request.instance.id, () => this.defineAndStart(request)),
      request.signal,
    );
  }

  /**
   * Removes the domain (forced off), its managed save image, its definition and its console log;
   * resolves if there is none. Waits first for a spawn of the instance still talking to libvirt.
   */
  async destroy(instance: Instance, options?: DriverCallOptions): Promise<void> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    await this.inflight.settled(instance.id, signal);
    await untilAborted(this.remove(instance.id), signal);
  }

  async getPowerState(instance: Instance): Promise<PowerState> {
    return (await this.withDomain('getPowerState', instance.id, (d) => this.stateOf(d))) ?? 'nostate';
  }

  async listInstances(): Promise<DriverInstance[]> {
    const conn = await this.connectionFor('list');
    const out: DriverInstance[] = [];
    let domains: Domain[] = [];
    try {
      domains = await conn.listAllDomains();
      for (const domain of domains) {
        const meta = await domain
          .xml()
          .then(parseXenInstanceMetadata)
          .catch((e: unknown) => {
            if (isNoDomain(e)) return undefined; // went away while listing
            throw e;
          });
        if (!meta || meta.hostId !== this.hostId) continue;
        const powerState = await this.stateOf(domain).catch((e: unknown) => {
          if (isNoDomain(e)) return undefined;
          throw e;
        });
        if (powerState) out.push({ instanceId: meta.instanceId, powerState, projectId: meta.projectId });
      }
    } catch (e) {
      throw wrapXenError('list', e);
    } finally {
      await Promise.all(domains.map((d) => d.free().catch(() => undefined)));
    }
    return out;
  }

  // ---- optional operations ---------------------------------------------------------------------

  /**
   * Asks the guest to shut down (Xen's PV control/shutdown node, ACPI for HVM) and waits for
   * libvirt's `stopped` event up to `timeoutMs` (default 60 s), then stops it by force.
   */
  async powerOff(instance: Instance, options?: DriverCallOptions & { timeoutMs?: number }): Promise<void> {
    await this.act('powerOff', instance, options, async (domain, signal) => {
      await this.shutdownOrDestroy(domain, options?.timeoutMs ?? 60_000, signal);
      this.lastSeen.set(instance.id, 'shutdown');
    });
  }

  async powerOn(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.act('powerOn', instance, options, async (domain) => {
      await domain.start();
      this.lastSeen.set(instance.id, 'running');
    });
  }

  /**
   * Hard: forced stop and start. Soft: the guest's own reboot (libxl restarts the domain), waited
   * for up to `softRebootTimeoutMs` through libvirt's `started` event, else a hard reboot.
   */
  async reboot(instance: Instance, kind: 'soft' | 'hard', options?: DriverCallOptions): Promise<void> {
    await this.act('reboot', instance, options, async (domain, signal) => {
      if (kind === 'soft') {
        const started = waitForLifecycle(this.lifecycle, domain.uuid, [DomainEventType.Started], {
          timeoutMs: this.options.softRebootTimeoutMs ?? 60_000,
          signal,
        });
        try {
          await domain.reboot();
          if (await started.done) {
            this.lastSeen.set(instance.id, 'running');
            return;
          }
        } finally {
          started.cancel();
        }
      }
      signal?.throwIfAborted();
      if ((await domain.info()).state !== DomainState.Shutoff) await domain.destroy().catch(ignoreNotRunning);
      await domain.start();
      this.lastSeen.set(instance.id, 'running');
    });
  }

  async pause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.act('pause', instance, options, async (domain) => {
      await domain.suspend();
      this.lastSeen.set(instance.id, 'paused');
    });
  }

  async unpause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.act('unpause', instance, options, async (domain) => {
      await domain.resume();
      this.lastSeen.set(instance.id, 'running');
    });
  }

  /**
   * Saves memory to libvirt's managed save image (libxl's save) and stops the domain. A PV guest
   * saves only with its kernel's cooperation (it answers the suspend request on xenstore's
   * `control/shutdown` node): while it is still booting, libxl fails at once and the guest keeps
   * running. libvirt has no event for "the guest kernel listens", so the save is tried again every
   * 2 s for up to `suspendTimeoutMs` while the domain runs (seen here: a guest booting under nested
   * TCG takes 15-40 s; a booted one saves in about 5 s).
   */
  async suspend(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.act('suspend', instance, options, async (domain, signal) => {
      const end = Date.now() + (this.options.suspendTimeoutMs ?? 120_000);
      this.lastSeen.set(instance.id, 'suspended');
      for (;;) {
        try {
          await domain.managedSave();
          return;
        } catch (e) {
          const running = (await domain.info().catch(() => undefined))?.state === DomainState.Running;
          if (!running || !isLibvirtError(e, VirErrorNumber.InternalError) || Date.now() > end) {
            this.lastSeen.set(instance.id, running ? 'running' : 'shutdown');
            throw e;
          }
        }
        await abortableDelay(2_000, signal);
      }
    });
  }

  /** Restores the domain from its managed save image (libxl's restore). */
  async resume(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.act('resume', instance, options, async (domain) => {
      await domain.start();
      this.lastSeen.set(instance.id, 'running');
    });
  }

  /** xenconsoled's log of the guest's console (last `lines` lines when given); '' when there is none. */
  async getConsoleOutput(instance: Instance, options?: { lines?: number }): Promise<string> {
    let text: string;
    try {
      text = await readFile(this.consoleLogPath(instance.id), 'utf8');
    } catch {
      return '';
    }
    if (!options?.lines) return text;
    return text
      .split('\n')
      .slice(-options.lines - 1)
      .join('\n');
  }

  /** Stops listening to events and closes the connection. Domains keep running. */
  async close(): Promise<void> {
    this.closed = true;
    this.events?.unsubscribe();
    this.events = undefined;
    this.subject.complete();
    this.lifecycle.complete();
    const conn = this.conn;
    this.conn = undefined;
    if (conn) await (await conn.catch(() => undefined))?.close().catch(() => undefined);
  }

  // ---- internals -------------------------------------------------------------------------------

  /** Where xenconsoled writes the instance's console log, as this process sees it. */
  consoleLogPath(instanceId: string): string {
    const dir = this.options.consoleLogDir ?? '/var/log/xen/console';
    return join(dir, `guest-${XenDriver.domainName(instanceId)}.log`);
  }

  private connection(): Promise<Connection> {
    if (!this.conn) {
      this.conn = Connection.open(this.uri).then(
        (conn) => {
          this.listen(conn);
          return conn;
        },
        (e: unknown) => {
          this.conn = undefined;
          throw new XenUnreachableError(this.uri, { cause: e });
        },
      );
    }
    return this.conn;
  }

  private async connectionFor(operation: string, instanceId?: string): Promise<Connection> {
    if (this.closed)
      throw wrapXenError(operation, new Error('driver closed'), instanceId, { retryable: false });
    try {
      return await this.connection();
    } catch (e) {
      throw wrapXenError(operation, e, instanceId);
    }
  }

  /** Lifecycle events: relayed to waiters, and each one of ours triggers a read of the real state. */
  private listen(conn: Connection): void {
    this.events = conn.lifecycleEvents().subscribe({
      next: (e) => {
        this.lifecycle.next(e);
        if (e.domainName.startsWith('nova-') && e.event !== DomainEventType.Undefined)
          void this.observe(e.domainUuid);
      },
      error: () => {
        // registration failed (connection lost): power events stop until the next connection
        this.events = undefined;
      },
    });
  }

  /** Emits a power-state event when the domain's real state differs from what this driver last saw or set. */
  private async observe(uuid: string): Promise<void> {
    if (this.acting.has(uuid)) return; // the action records the state it leaves
    try {
      const state = await this.withDomain('observe', uuid, async (d) => {
        if (!this.ours.has(uuid)) {
          const meta = parseXenInstanceMetadata(await d.xml());
          this.ours.set(uuid, meta?.hostId === this.hostId && meta.instanceId === uuid);
        }
        return this.ours.get(uuid) ? this.stateOf(d) : undefined;
      });
      const before = this.lastSeen.get(uuid);
      if (state === undefined || before === undefined || this.acting.has(uuid)) return;
      if (state !== before) {
        this.lastSeen.set(uuid, state);
        this.subject.next({ instanceId: uuid, powerState: state, at: Date.now() });
      }
    } catch {
      // the connection went away: the next event (or the engine's own sync) catches up
    }
  }

  private async stateOf(domain: Domain): Promise<PowerState> {
    const { state } = await domain.info();
    if (state === DomainState.Shutoff && (await domain.hasManagedSaveImage())) return 'suspended';
    return powerStateOfXenDomain(state);
  }

  /** Runs `fn` on the instance's domain and frees the handle; `undefined` when there is no such domain. */
  private async withDomain<T>(
    operation: string,
    instanceId: string,
    fn: (d: Domain) => Promise<T>,
  ): Promise<T | undefined> {
    const conn = await this.connectionFor(operation, instanceId);
    let domain: Domain | undefined;
    try {
      domain = await conn.lookupByUUID(instanceId);
      return await fn(domain);
    } catch (e) {
      if (isNoDomain(e)) return undefined;
      throw wrapXenError(operation, e, instanceId);
    } finally {
      await domain?.free().catch(() => undefined);
    }
  }

  private async remove(instanceId: string): Promise<void> {
    this.lastSeen.delete(instanceId);
    await this.withDomain('destroy', instanceId, async (domain) => {
      if ((await domain.info()).state !== DomainState.Shutoff) await domain.destroy().catch(ignoreNotRunning);
      await domain.undefine(UndefineFlags.ManagedSave).catch((e: unknown) => {
        if (!isNoDomain(e)) throw e;
      });
    });
    this.ours.delete(instanceId);
    await rm(this.consoleLogPath(instanceId), { force: true }).catch(() => undefined);
  }

  /** An action on an existing domain: refused at once if aborted, and not waited for past an abort. */
  private async act(
    operation: string,
    instance: Instance,
    options: DriverCallOptions | undefined,
    fn: (domain: Domain, signal: AbortSignal | undefined) => Promise<void>,
  ): Promise<void> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    const id = instance.id;
    const work = async () => {
      // the states an action passes through (a hard reboot's stop) are its own, not events
      this.acting.set(id, (this.acting.get(id) ?? 0) + 1);
      try {
        const found = await this.withDomain(operation, id, async (d) => {
          await fn(d, signal);
          return true;
        });
        if (!found)
          throw wrapXenError(operation, new Error(`no domain for instance ${id}`), id, { retryable: false });
      } finally {
        const n = (this.acting.get(id) ?? 1) - 1;
        if (n > 0) this.acting.set(id, n);
        else this.acting.delete(id);
      }
    };
    await untilAborted(work(), signal);
  }

  /** Asks for a shutdown and waits for libvirt's `stopped` event (or the state) up to `timeoutMs`, then destroys. */
  private async shutdownOrDestroy(
    domain: Domain,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if ((await domain.info()).state === DomainState.Shutoff) return;
    if (timeoutMs > 0) {
      const stopped = waitForLifecycle(this.lifecycle, domain.uuid, [DomainEventType.Stopped], {
        timeoutMs,
        signal,
      });
      try {
        await domain.shutdown().catch(ignoreNotRunning);
        // the event may have come before the wait was set up: the state tells
        if ((await domain.info()).state === DomainState.Shutoff) return;
        if (await stopped.done) return;
      } finally {
        stopped.cancel();
      }
    }
    signal?.throwIfAborted();
    await domain.destroy().catch(ignoreNotRunning);
  }

  /**
   * Runs spawn's steps, checking the signal between them; on failure or abort, removes what it
   * made and rethrows (the signal's reason when it aborted).
   */
  private async defineAndStart(request: SpawnRequest): Promise<void> {
    const { instance, signal } = request;
    let domain: Domain | undefined;
    try {
      const conn = await this.connectionFor('spawn', instance.id);
      signal?.throwIfAborted();
      const xml = buildXenDomainXml(await this.domainSpec(request));
      signal?.throwIfAborted();
      this.ours.set(instance.id, true);
      domain = await conn.defineXML(xml);
      signal?.throwIfAborted();
      await domain.start();
      signal?.throwIfAborted();
      this.lastSeen.set(instance.id, 'running');
      await domain.free().catch(() => undefined);
    } catch (e) {
      if (domain) {
        await domain.destroy().catch(() => undefined);
        await domain.undefine(UndefineFlags.ManagedSave).catch(() => undefined);
        await domain.free().catch(() => undefined);
      }
      this.lastSeen.delete(instance.id);
      this.ours.delete(instance.id);
      if (signal?.aborted) throw signal.reason;
      throw wrapXenError('spawn', e, instance.id);
    }
  }

  /** Turns the request into a domain spec; image files are staged where dom0 reads them. */
  private async domainSpec(request: SpawnRequest): Promise<XenDomainSpec> {
    const { instance, image, images, signal } = request;
    const props = image.properties;
    const staged = async (id: string) => this.stage.stage(await untilAborted(images.acquire(id), signal));
    const vmMode = props.vmMode;
    const guestType = vmMode === undefined ? (this.options.guestType ?? 'pv') : VM_MODES[vmMode];
    if (!guestType)
      throw new XenUnsupportedImageError(image.id, `vmMode ${vmMode} (use xen, pv, pvh or hvm)`);
    const disks: XenDiskSpec[] = [];
    let kernel: string | undefined;
    let initrd: string | undefined;
    if (image.diskFormat === 'qcow2' || image.diskFormat === 'raw') {
      throw new XenUnsupportedImageError(
        image.id,
        `disk format ${image.diskFormat}: disk images are not supported yet (use an initramfs image with kernelImageId)`,
      );
    }
    if (image.diskFormat !== 'initramfs')
      throw new XenUnsupportedImageError(image.id, `disk format ${image.diskFormat}`);
    initrd = await staged(image.id);
    if (props.kernelImageId) kernel = await staged(props.kernelImageId);
    if (props.ramdiskImageId) initrd = await staged(props.ramdiskImageId);
    if (!kernel) throw new XenUnsupportedImageError(image.id, 'a Xen guest needs kernelImageId');
    return {
      name: XenDriver.domainName(instance.id),
      uuid: instance.id,
      guestType,
      memoryMiB: instance.flavor.ramMb,
      vcpus: instance.flavor.vcpus,
      kernel,
      initrd,
      cmdline: props.kernelCmdline ?? this.options.kernelCmdline ?? 'console=hvc0',
      disks,
      metadata: {
        instanceId: instance.id,
        projectId: instance.projectId,
        hostId: this.hostId,
        displayName: instance.name,
        flavorId: instance.flavor.id,
        imageId: image.id,
      },
    };
  }
}

function ignoreNotRunning(e: unknown): void {
  if (isNotRunning(e)) return;
  throw e;
}
