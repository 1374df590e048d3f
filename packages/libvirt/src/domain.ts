import type { Connection } from './connection.js';
import { domainStateNames, JobType } from './constants.js';
import { DomainSnapshot } from './domain-snapshot.js';
import { NativeHandle } from './handle.js';
import type { NativeDomainInfo, NativeJobInfo, Pointer } from './native.js';
import type { HandleOwner, OwnedHandle } from './owner.js';
import {
  decodeTypedParams,
  NativeTypedParams,
  type TypedParameter,
  type TypedParameterValue,
  toSafeNumber,
  typedParamsToRecord,
} from './typed-params.js';

/** What `virDomainGetInfo` reports. */
export interface DomainInfo {
  /** {@link DomainState} value. */
  readonly state: number;
  /** Its name, e.g. `running`, `shut off`. */
  readonly stateName: string;
  /** Maximum memory, KiB. */
  readonly maxMemoryKiB: number;
  /** Current memory, KiB. */
  readonly memoryKiB: number;
  /** Number of virtual CPUs. */
  readonly vcpus: number;
  /** CPU time used, nanoseconds (bigint beyond 2^53). */
  readonly cpuTimeNs: number | bigint;
}

/** What `virDomainGetJobInfo` reports; times in milliseconds, data in bytes. */
export interface JobInfo {
  /** {@link JobType} value (`None` when no job runs). */
  readonly type: number;
  readonly timeElapsedMs: number | bigint;
  readonly timeRemainingMs: number | bigint;
  readonly dataTotal: number | bigint;
  readonly dataProcessed: number | bigint;
  readonly dataRemaining: number | bigint;
  readonly memTotal: number | bigint;
  readonly memProcessed: number | bigint;
  readonly memRemaining: number | bigint;
  readonly fileTotal: number | bigint;
  readonly fileProcessed: number | bigint;
  readonly fileRemaining: number | bigint;
}

/** What `virDomainGetJobStats` reports: the job type and libvirt's named fields (`VIR_DOMAIN_JOB_*`). */
export interface JobStats {
  /** {@link JobType} value. */
  readonly type: number;
  /** Fields by name, e.g. `time_elapsed`, `data_remaining`, `memory_dirty_rate`, `downtime`. */
  readonly fields: Readonly<Record<string, TypedParameterValue>>;
  /** The same fields with their libvirt types, in libvirt's order. */
  readonly params: readonly TypedParameter[];
}

/** Options of {@link Domain.migrateToUri}: the common `VIR_MIGRATE_PARAM_*` fields, typed. */
export interface MigrateOptions {
  /** {@link MigrateFlags}, e.g. `MigrateFlags.Live | MigrateFlags.PeerToPeer`. */
  readonly flags?: number;
  /** `migrate_uri`: where QEMU sends the data, e.g. `tcp://127.0.0.1:49152`. */
  readonly migrateUri?: string;
  /** `listen_address`: where the destination QEMU listens. */
  readonly listenAddress?: string;
  /** `destination_name`: the domain's name on the destination. */
  readonly destinationName?: string;
  /** `destination_xml`: the domain XML to use on the destination. */
  readonly destinationXml?: string;
  /** `persistent_xml`: the persistent definition on the destination. */
  readonly persistentXml?: string;
  /** `bandwidth`: MiB/s limit. */
  readonly bandwidthMiBs?: number;
  /** `migrate_disks`: disk targets to copy (with `NonSharedDisk`). */
  readonly migrateDisks?: readonly string[];
  /** `parallel.connections` (with `Parallel`). */
  readonly parallelConnections?: number;
  /** Any other typed parameters, appended as given. */
  readonly extra?: readonly TypedParameter[];
}

/** The migration options as libvirt typed parameters. */
export function migrateParameters(o: MigrateOptions): TypedParameter[] {
  const p: TypedParameter[] = [];
  if (o.migrateUri !== undefined) p.push({ name: 'migrate_uri', type: 'string', value: o.migrateUri });
  if (o.listenAddress !== undefined)
    p.push({ name: 'listen_address', type: 'string', value: o.listenAddress });
  if (o.destinationName !== undefined)
    p.push({ name: 'destination_name', type: 'string', value: o.destinationName });
  if (o.destinationXml !== undefined)
    p.push({ name: 'destination_xml', type: 'string', value: o.destinationXml });
  if (o.persistentXml !== undefined)
    p.push({ name: 'persistent_xml', type: 'string', value: o.persistentXml });
  if (o.bandwidthMiBs !== undefined) p.push({ name: 'bandwidth', type: 'ullong', value: o.bandwidthMiBs });
  for (const d of o.migrateDisks ?? []) p.push({ name: 'migrate_disks', type: 'string', value: d });
  if (o.parallelConnections !== undefined)
    p.push({ name: 'parallel.connections', type: 'int', value: o.parallelConnections });
  p.push(...(o.extra ?? []));
  return p;
}

const n = (v: number | bigint): number | bigint => toSafeNumber(v);

/**
 * A libvirt domain (`virDomainPtr`). Every method runs its libvirt call off the main thread and
 * rejects with a `LibvirtError` on failure. Free the handle with {@link Domain.free} when done
 * (the domain itself is untouched), or close the connection, which frees all of its handles.
 */
export class Domain implements OwnedHandle {
  /** The domain's name (read once when the handle is made). */
  readonly name: string;
  /** The domain's UUID, lower-case with dashes. */
  readonly uuid: string;
  private readonly handle: NativeHandle;

  /** @internal Made by `Connection` methods; takes ownership of `ptr`. */
  constructor(
    private readonly owner: HandleOwner,
    ptr: Pointer,
  ) {
    const native = owner.native;
    this.name = native.callSync<string>('virDomainGetName', ptr);
    const buf = Buffer.alloc(37);
    native.callSync('virDomainGetUUIDString', ptr, buf);
    this.uuid = buf.toString('latin1', 0, 36);
    this.handle = new NativeHandle(ptr, 'domain', this.name);
    owner.track(this);
  }

  private call<T = unknown>(
    fn: Parameters<HandleOwner['native']['call']>[0],
    ...args: unknown[]
  ): Promise<T> {
    return this.handle.use((p) => this.owner.native.call<T>(fn, p, ...args));
  }

  /** @internal The live pointer, for calls that take a domain argument. */
  nativePointer(): Pointer {
    return this.handle.peek();
  }

  /** The hypervisor's id of a running domain; `undefined` when it is not running. */
  id(): number | undefined {
    const id = this.owner.native.callSync<number>('virDomainGetID', this.handle.peek());
    return id === 0xffffffff ? undefined : id;
  }

  /** Starts a defined domain (`virDomainCreateWithFlags`); boots from a managed save image if it has one. */
  async start(flags = 0): Promise<void> {
    await this.call('virDomainCreateWithFlags', flags);
  }

  /** Stops the domain at once, like pulling the plug (`virDomainDestroyFlags`). */
  async destroy(flags = 0): Promise<void> {
    await this.call('virDomainDestroyFlags', flags);
  }

  /** Asks the guest to shut down (`virDomainShutdownFlags`, {@link ShutdownFlags}); returns before it has. */
  async shutdown(flags = 0): Promise<void> {
    await this.call('virDomainShutdownFlags', flags);
  }

  /** Asks the guest to reboot (`virDomainReboot`). */
  async reboot(flags = 0): Promise<void> {
    await this.call('virDomainReboot', flags);
  }

  /** Pauses the domain's vCPUs (`virDomainSuspend`). */
  async suspend(): Promise<void> {
    await this.call('virDomainSuspend');
  }

  /** Resumes a paused domain (`virDomainResume`). */
  async resume(): Promise<void> {
    await this.call('virDomainResume');
  }

  /**
   * Removes the domain's persistent definition (`virDomainUndefineFlags`, {@link UndefineFlags});
   * a running domain keeps running as a transient one. The handle stays usable until freed.
   */
  async undefine(flags = 0): Promise<void> {
    await this.call('virDomainUndefineFlags', flags);
  }

  /** The domain's XML description (`virDomainGetXMLDesc`, {@link DomainXmlFlags}). */
  xml(flags = 0): Promise<string> {
    return this.call<string>('virDomainGetXMLDesc', flags);
  }

  /** State, memory, vCPUs and CPU time (`virDomainGetInfo`). */
  async info(): Promise<DomainInfo> {
    const out = {} as NativeDomainInfo;
    await this.call('virDomainGetInfo', out);
    return {
      state: out.state,
      stateName: domainStateNames[out.state] ?? `state ${out.state}`,
      maxMemoryKiB: Number(out.maxMem),
      memoryKiB: Number(out.memory),
      vcpus: out.nrVirtCpu,
      cpuTimeNs: n(out.cpuTime),
    };
  }

  /** State and its reason (`virDomainGetState`). */
  async state(): Promise<{ state: number; stateName: string; reason: number }> {
    const state = [0];
    const reason = [0];
    await this.call('virDomainGetState', state, reason, 0);
    const s = state[0] ?? 0;
    return { state: s, stateName: domainStateNames[s] ?? `state ${s}`, reason: reason[0] ?? 0 };
  }

  /** Whether the domain is running (`virDomainIsActive`). */
  async isActive(): Promise<boolean> {
    return (await this.call<number>('virDomainIsActive')) === 1;
  }

  /** Whether the domain has a persistent definition (`virDomainIsPersistent`). */
  async isPersistent(): Promise<boolean> {
    return (await this.call<number>('virDomainIsPersistent')) === 1;
  }

  /**
   * Saves the running domain's memory to libvirt's managed save image and stops it
   * (`virDomainManagedSave`). {@link Domain.start} restores it from there.
   */
  async managedSave(flags = 0): Promise<void> {
    await this.call('virDomainManagedSave', flags);
  }

  /** Whether a managed save image exists (`virDomainHasManagedSaveImage`). */
  async hasManagedSaveImage(): Promise<boolean> {
    return (await this.call<number>('virDomainHasManagedSaveImage', 0)) === 1;
  }

  /** Deletes the managed save image, so the next start boots afresh (`virDomainManagedSaveRemove`). */
  async removeManagedSave(): Promise<void> {
    await this.call('virDomainManagedSaveRemove', 0);
  }

  /** Creates a snapshot (`virDomainSnapshotCreateXML`, {@link SnapshotCreateFlags}). */
  async createSnapshot(xml = '<domainsnapshot/>', flags = 0): Promise<DomainSnapshot> {
    const p = await this.call<Pointer>('virDomainSnapshotCreateXML', xml, flags);
    return this.wrapSnapshot(p);
  }

  /** All snapshots (`virDomainListAllSnapshots`); free each, or close the connection. */
  async listSnapshots(flags = 0): Promise<DomainSnapshot[]> {
    const out: [Pointer | null] = [null];
    const count = await this.call<number>('virDomainListAllSnapshots', out, flags);
    return this.wrapArray(out[0], count, (p) => this.wrapSnapshot(p));
  }

  /** The snapshot called `name` (`virDomainSnapshotLookupByName`); VIR_ERR_NO_DOMAIN_SNAPSHOT if none. */
  async lookupSnapshot(name: string): Promise<DomainSnapshot> {
    return this.wrapSnapshot(await this.call<Pointer>('virDomainSnapshotLookupByName', name, 0));
  }

  /** The current snapshot (`virDomainSnapshotCurrent`); VIR_ERR_NO_DOMAIN_SNAPSHOT if none. */
  async currentSnapshot(): Promise<DomainSnapshot> {
    return this.wrapSnapshot(await this.call<Pointer>('virDomainSnapshotCurrent', 0));
  }

  /** Attaches a device described by `xml` (`virDomainAttachDeviceFlags`, {@link DeviceModifyFlags}). */
  async attachDevice(xml: string, flags = 0): Promise<void> {
    await this.call('virDomainAttachDeviceFlags', xml, flags);
  }

  /**
   * Detaches the device described by `xml` (`virDomainDetachDeviceFlags`). For a live guest the
   * call may return before the guest has let the device go (libvirt's device-removed event).
   */
  async detachDevice(xml: string, flags = 0): Promise<void> {
    await this.call('virDomainDetachDeviceFlags', xml, flags);
  }

  /** Progress of the running job (`virDomainGetJobInfo`); type `None` when there is none. */
  async jobInfo(): Promise<JobInfo> {
    const o = {} as NativeJobInfo;
    await this.call('virDomainGetJobInfo', o);
    return {
      type: o.type,
      timeElapsedMs: n(o.timeElapsed),
      timeRemainingMs: n(o.timeRemaining),
      dataTotal: n(o.dataTotal),
      dataProcessed: n(o.dataProcessed),
      dataRemaining: n(o.dataRemaining),
      memTotal: n(o.memTotal),
      memProcessed: n(o.memProcessed),
      memRemaining: n(o.memRemaining),
      fileTotal: n(o.fileTotal),
      fileProcessed: n(o.fileProcessed),
      fileRemaining: n(o.fileRemaining),
    };
  }

  /** Named statistics of the running (or, with `JobStatsFlags.Completed`, the last) job (`virDomainGetJobStats`). */
  async jobStats(flags = 0): Promise<JobStats> {
    const type = [0];
    const params: [Pointer | null] = [null];
    const count = [0];
    await this.call('virDomainGetJobStats', type, params, count, flags);
    const native = this.owner.native;
    const ptr = params[0];
    let decoded: TypedParameter[] = [];
    if (ptr !== null && ptr !== undefined) {
      try {
        decoded = decodeTypedParams(native, ptr, count[0] ?? 0);
      } finally {
        native.callSync('virTypedParamsFree', ptr, count[0] ?? 0);
      }
    }
    return { type: type[0] ?? JobType.None, fields: typedParamsToRecord(decoded), params: decoded };
  }

  /** Aborts the running job, e.g. a migration, which leaves the guest on the source (`virDomainAbortJob`). */
  async abortJob(): Promise<void> {
    await this.call('virDomainAbortJob');
  }

  /**
   * Migrates the domain to `destinationUri` (`virDomainMigrateToURI3`): with `MigrateFlags.PeerToPeer`
   * a libvirt URI (`qemu+unix:///system?socket=...`), otherwise QEMU's migration URI. Resolves when
   * the migration has finished; {@link Domain.jobStats} and {@link Domain.abortJob} work meanwhile
   * (they run on other pool threads: size the pool for it, see the README).
   */
  async migrateToUri(destinationUri: string, options: MigrateOptions = {}): Promise<void> {
    const params = new NativeTypedParams(this.owner.native).add(migrateParameters(options));
    try {
      await this.call(
        'virDomainMigrateToURI3',
        destinationUri,
        params.pointer,
        params.length,
        options.flags ?? 0,
      );
    } finally {
      params.free();
    }
  }

  /**
   * Migrates the domain to the host behind `destination` (`virDomainMigrate3`, libvirt's managed
   * direct migration: this process drives both daemons, so each needs to reach only its own; add
   * `MigrateFlags.PeerToPeer` to let the source daemon talk to the destination's instead). Resolves
   * with the domain on the destination (a handle owned by `destination`) once the migration has
   * finished; {@link Domain.jobStats}, {@link Domain.abortJob}, {@link Domain.migrateStartPostCopy}
   * and {@link Domain.migrateSetMaxDowntime} work meanwhile (on other pool threads).
   */
  async migrate(destination: Connection, options: MigrateOptions = {}): Promise<Domain> {
    const params = new NativeTypedParams(this.owner.native).add(migrateParameters(options));
    try {
      const p = await destination.handle.use((dconn) =>
        this.call<Pointer>('virDomainMigrate3', dconn, params.pointer, params.length, options.flags ?? 0),
      );
      return new Domain(destination, p);
    } finally {
      params.free();
    }
  }

  /** Sets the bandwidth cap of a running (or the next) migration, MiB/s (`virDomainMigrateSetMaxSpeed`). */
  async migrateSetMaxSpeed(mibPerSecond: number): Promise<void> {
    await this.call('virDomainMigrateSetMaxSpeed', mibPerSecond, 0);
  }

  /** The downtime a live migration may cause, in milliseconds (`virDomainMigrateGetMaxDowntime`). */
  async migrateGetMaxDowntime(): Promise<number> {
    const out: [number | bigint] = [0];
    await this.call('virDomainMigrateGetMaxDowntime', out, 0);
    return Number(out[0]);
  }

  /** Switches a running migration started with `MigrateFlags.Postcopy` to post-copy (`virDomainMigrateStartPostCopy`). */
  async migrateStartPostCopy(): Promise<void> {
    await this.call('virDomainMigrateStartPostCopy', 0);
  }

  /** Sets the downtime a running live migration may cause, in milliseconds (`virDomainMigrateSetMaxDowntime`). */
  async migrateSetMaxDowntime(ms: number): Promise<void> {
    await this.call('virDomainMigrateSetMaxDowntime', BigInt(ms), 0);
  }

  /** Frees the handle (`virDomainFree`); the domain itself is untouched. Idempotent. */
  async free(): Promise<void> {
    await this.handle.release((p) => this.owner.native.call('virDomainFree', p));
    this.owner.untrack(this);
  }

  /** Whether the handle was freed. */
  get freed(): boolean {
    return this.handle.released;
  }

  private wrapSnapshot(p: Pointer): DomainSnapshot {
    return new DomainSnapshot(this.owner, p, this.name);
  }

  private wrapArray<T>(arr: Pointer | null, count: number, wrap: (p: Pointer) => T): T[] {
    if (arr === null || arr === undefined || count <= 0) {
      if (arr) this.owner.native.koffi.free(arr);
      return [];
    }
    const k = this.owner.native.koffi;
    const ptrs = k.decode(arr, 'void *', count) as Pointer[];
    k.free(arr);
    return ptrs.map(wrap);
  }
}
