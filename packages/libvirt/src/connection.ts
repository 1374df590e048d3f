import { Observable } from 'rxjs';
import {
  DeviceEventDispatcher,
  type DeviceEventListener,
  EVENT_ID_DEVICE_REMOVAL_FAILED,
  EVENT_ID_DEVICE_REMOVED,
} from './device-events.js';
import { Domain } from './domain.js';
import { LibvirtClosedError } from './errors.js';
import { LibvirtEventLoop } from './event-loop.js';
import { NativeHandle } from './handle.js';
import {
  type DomainLifecycleEvent,
  EVENT_ID_LIFECYCLE,
  LifecycleDispatcher,
  type LifecycleListener,
} from './lifecycle-events.js';
import { type LibvirtNative, loadLibvirtNative, type NativeNodeInfo, type Pointer } from './native.js';
import type { HandleOwner, OwnedHandle } from './owner.js';

/** A libvirt version, as libvirt encodes it (`major * 1,000,000 + minor * 1,000 + release`). */
export interface LibvirtVersion {
  readonly major: number;
  readonly minor: number;
  readonly release: number;
  /** libvirt's encoded number. */
  readonly encoded: number;
  /** `major.minor.release`. */
  readonly text: string;
}

/** Decodes libvirt's version number. */
export function decodeVersion(encoded: number): LibvirtVersion {
  const major = Math.floor(encoded / 1_000_000);
  const minor = Math.floor((encoded % 1_000_000) / 1000);
  const release = encoded % 1000;
  return { major, minor, release, encoded, text: `${major}.${minor}.${release}` };
}

/** What `virNodeGetInfo` reports about the host. */
export interface NodeInfo {
  /** CPU model, e.g. `x86_64`. */
  readonly model: string;
  /** Memory, KiB. */
  readonly memoryKiB: number;
  /** Active CPUs. */
  readonly cpus: number;
  /** Expected CPU frequency, MHz (0 when unknown). */
  readonly mhz: number;
  readonly nodes: number;
  readonly sockets: number;
  readonly cores: number;
  readonly threads: number;
}

/** Options of {@link Connection.open}. */
export interface OpenOptions {
  /** Open read-only (`virConnectOpenReadOnly`): reads work, changes fail with VIR_ERR_OPERATION_DENIED. */
  readonly readOnly?: boolean;
}

/** An event subscription (lifecycle or device events); {@link EventSubscription.close} deregisters it. */
export interface EventSubscription {
  /** Deregisters (`virConnectDomainEventDeregisterAny`). Idempotent. */
  close(): Promise<void>;
}

/** A lifecycle event subscription (see {@link EventSubscription}). */
export type LifecycleSubscription = EventSubscription;

interface Shared {
  native: LibvirtNative;
  loop: LibvirtEventLoop;
  lifecycle: LifecycleDispatcher;
  devices: DeviceEventDispatcher;
}
let shared: Promise<Shared> | undefined;
function sharedState(): Promise<Shared> {
  shared ??= loadLibvirtNative().then((native) => ({
    native,
    loop: new LibvirtEventLoop(native),
    lifecycle: new LifecycleDispatcher(native),
    devices: new DeviceEventDispatcher(native),
  }));
  shared.catch(() => {
    shared = undefined;
  });
  return shared;
}

/**
 * The version of the libvirt library loaded in this process (`virGetVersion`).
 * @throws LibvirtUnavailableError when koffi or libvirt.so.0 does not load.
 */
export async function libvirtVersion(): Promise<LibvirtVersion> {
  const { native } = await sharedState();
  const lib = [0];
  native.callSync('virGetVersion', lib, null, [0]);
  return decodeVersion(lib[0] ?? 0);
}

/**
 * The size of libuv's thread pool, where this binding's calls run (`UV_THREADPOOL_SIZE`, 4 when
 * unset). While a connection is open, libvirt's event loop holds one of these threads; every
 * call in flight holds another (a migration for its whole length). Set the variable before the
 * process starts (libuv reads it once, at the pool's first use).
 */
export function threadPoolSize(): number {
  const v = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10);
  return Number.isFinite(v) && v > 0 ? Math.min(v, 1024) : 4;
}

/**
 * A connection to a libvirt hypervisor (`virConnectPtr`), e.g. `qemu:///system` or the built-in
 * `test:///default`. Every call runs off the main thread and rejects with a `LibvirtError` on
 * failure. {@link Connection.close} frees every domain and snapshot handle made through it,
 * deregisters its event listeners and, with the last open connection, stops libvirt's event
 * loop: close every connection, or the process stays alive.
 */
export class Connection implements HandleOwner {
  /** @internal */
  readonly handle: NativeHandle;
  private readonly owned = new Set<OwnedHandle>();
  private readonly subscriptions = new Set<EventSubscription>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly shared: Shared,
    ptr: Pointer,
    /** The URI the connection was opened with. */
    readonly uri: string,
    /** Whether it was opened read-only. */
    readonly readOnly: boolean,
  ) {
    this.handle = new NativeHandle(ptr, 'connection', uri);
  }

  /** @internal */
  get native(): LibvirtNative {
    return this.shared.native;
  }

  /**
   * Opens a connection (`virConnectOpen` / `virConnectOpenReadOnly`, off the main thread) and
   * starts libvirt's event loop if it is not running yet.
   * @throws LibvirtUnavailableError when koffi or libvirt.so.0 does not load.
   * @throws LibvirtError when libvirt refuses (e.g. VIR_ERR_NO_CONNECT, VIR_ERR_SYSTEM_ERROR when libvirtd is down).
   */
  static async open(uri: string, options: OpenOptions = {}): Promise<Connection> {
    const s = await sharedState();
    // The loop must run while connections are open (keepalive, events); start it first so the
    // open itself can use it.
    s.loop.acquire();
    try {
      const ptr = await s.native.call<Pointer>(
        options.readOnly ? 'virConnectOpenReadOnly' : 'virConnectOpen',
        uri,
      );
      return new Connection(s, ptr, uri, options.readOnly === true);
    } catch (e) {
      await s.loop.release();
      throw e;
    }
  }

  /** Whether {@link Connection.close} was called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** @internal */
  track(h: OwnedHandle): void {
    this.owned.add(h);
  }

  /** @internal */
  untrack(h: OwnedHandle): void {
    this.owned.delete(h);
  }

  private call<T = unknown>(fn: Parameters<LibvirtNative['call']>[0], ...args: unknown[]): Promise<T> {
    if (this.closing) return Promise.reject(new LibvirtClosedError('connection', this.uri));
    return this.handle.use((p) => this.native.call<T>(fn, p, ...args));
  }

  /** The host's name (`virConnectGetHostname`). */
  hostname(): Promise<string> {
    return this.call<string>('virConnectGetHostname');
  }

  /** The canonical URI of the connection (`virConnectGetURI`). */
  canonicalUri(): Promise<string> {
    return this.call<string>('virConnectGetURI');
  }

  /** The driver's name, e.g. `QEMU`, `TEST` (`virConnectGetType`). */
  type(): Promise<string> {
    return this.call<string>('virConnectGetType');
  }

  /** The hypervisor's capabilities XML (`virConnectGetCapabilities`). */
  capabilities(): Promise<string> {
    return this.call<string>('virConnectGetCapabilities');
  }

  /**
   * Compares a CPU description (`<cpu>` XML, e.g. from another host's capabilities) with this
   * host's CPU (`virConnectCompareCPU`, {@link CompareCpuFlags}): a {@link CpuCompareResult}.
   * With `CompareCpuFlags.FailIncompatible` an incompatible CPU rejects with VIR_ERR_CPU_INCOMPATIBLE
   * naming what is missing.
   */
  compareCpu(cpuXml: string, flags = 0): Promise<number> {
    return this.call<number>('virConnectCompareCPU', cpuXml, flags);
  }

  /**
   * Compares a guest CPU description (`<cpu>` XML, e.g. from a running domain) with what this
   * host's hypervisor can provide for the given emulator, arch, machine type and virt type
   * (`virConnectCompareHypervisorCPU`; undefined ones take the hypervisor's defaults): a
   * {@link CpuCompareResult}; see {@link Connection.compareCpu} for the flags.
   */
  compareHypervisorCpu(
    cpuXml: string,
    target: { emulator?: string; arch?: string; machine?: string; virtType?: string } = {},
    flags = 0,
  ): Promise<number> {
    return this.call<number>(
      'virConnectCompareHypervisorCPU',
      target.emulator ?? null,
      target.arch ?? null,
      target.machine ?? null,
      target.virtType ?? null,
      cpuXml,
      flags,
    );
  }

  /** CPU and memory of the host (`virNodeGetInfo`). */
  async nodeInfo(): Promise<NodeInfo> {
    const o = {} as NativeNodeInfo;
    await this.call('virNodeGetInfo', o);
    return {
      model: o.model,
      memoryKiB: Number(o.memory),
      cpus: o.cpus,
      mhz: o.mhz,
      nodes: o.nodes,
      sockets: o.sockets,
      cores: o.cores,
      threads: o.threads,
    };
  }

  /** The libvirt version of the daemon (or library, for in-process drivers) serving this connection (`virConnectGetLibVersion`). */
  async libVersion(): Promise<LibvirtVersion> {
    const v = [0];
    await this.call('virConnectGetLibVersion', v);
    return decodeVersion(Number(v[0] ?? 0));
  }

  /** The hypervisor's version, e.g. QEMU's (`virConnectGetVersion`). */
  async hypervisorVersion(): Promise<LibvirtVersion> {
    const v = [0];
    await this.call('virConnectGetVersion', v);
    return decodeVersion(Number(v[0] ?? 0));
  }

  /** Defines a persistent domain from XML (`virDomainDefineXMLFlags`); it is not started. */
  async defineXML(xml: string, flags = 0): Promise<Domain> {
    return this.wrapDomain(await this.call<Pointer>('virDomainDefineXMLFlags', xml, flags));
  }

  /** Creates and starts a transient domain from XML (`virDomainCreateXML`). */
  async createXML(xml: string, flags = 0): Promise<Domain> {
    return this.wrapDomain(await this.call<Pointer>('virDomainCreateXML', xml, flags));
  }

  /** The domain called `name` (`virDomainLookupByName`); VIR_ERR_NO_DOMAIN if there is none. */
  async lookupByName(name: string): Promise<Domain> {
    return this.wrapDomain(await this.call<Pointer>('virDomainLookupByName', name));
  }

  /** The domain with `uuid` (`virDomainLookupByUUIDString`); VIR_ERR_NO_DOMAIN if there is none. */
  async lookupByUUID(uuid: string): Promise<Domain> {
    return this.wrapDomain(await this.call<Pointer>('virDomainLookupByUUIDString', uuid));
  }

  /** All domains, running and defined (`virConnectListAllDomains`, {@link ListDomainsFlags}; 0 = all). */
  async listAllDomains(flags = 0): Promise<Domain[]> {
    const out: [Pointer | null] = [null];
    const count = await this.call<number>('virConnectListAllDomains', out, flags);
    const arr = out[0];
    const k = this.native.koffi;
    if (arr === null || arr === undefined) return [];
    const ptrs = count > 0 ? (k.decode(arr, 'void *', count) as Pointer[]) : [];
    k.free(arr);
    return ptrs.map((p) => this.wrapDomain(p));
  }

  /**
   * Calls `listener` for every lifecycle event (defined, started, stopped, ...) of `domain`, or
   * of every domain (`virConnectDomainEventRegisterAny`, `VIR_DOMAIN_EVENT_ID_LIFECYCLE`).
   * Resolves once libvirt has registered it; close the subscription to deregister.
   */
  subscribeLifecycle(
    listener: LifecycleListener,
    options: { domain?: Domain } = {},
  ): Promise<EventSubscription> {
    const { lifecycle } = this.shared;
    return this.subscribe(lifecycle, listener, [[EVENT_ID_LIFECYCLE, lifecycle.callback]], options.domain);
  }

  /**
   * Calls `listener` when a device leaves a running domain (`VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED`:
   * the guest released it after a detach) or the guest refuses to release it
   * (`VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED`), for `domain` or every domain. Resolves once
   * libvirt has registered both; close the subscription to deregister.
   */
  subscribeDeviceEvents(
    listener: DeviceEventListener,
    options: { domain?: Domain } = {},
  ): Promise<EventSubscription> {
    const { devices } = this.shared;
    return this.subscribe(
      devices,
      listener,
      [
        [EVENT_ID_DEVICE_REMOVED, devices.removed],
        [EVENT_ID_DEVICE_REMOVAL_FAILED, devices.removalFailed],
      ],
      options.domain,
    );
  }

  /** Registers `listener` under each `[event id, callback]` (all or none); the subscription deregisters them. */
  private async subscribe<L>(
    routes: { add(listener: L): number; remove(id: number): void },
    listener: L,
    events: ReadonlyArray<readonly [number, bigint]>,
    domain: Domain | undefined,
  ): Promise<EventSubscription> {
    const route = routes.add(listener);
    const callbackIds: number[] = [];
    const deregister = async () => {
      routes.remove(route);
      if (this.handle.released) return;
      await Promise.allSettled(
        callbackIds.map((id) =>
          this.handle.use((conn) => this.native.call('virConnectDomainEventDeregisterAny', conn, id)),
        ),
      );
    };
    try {
      for (const [eventId, callback] of events) {
        callbackIds.push(
          await this.handle.use(async (conn) => {
            if (this.closing) throw new LibvirtClosedError('connection', this.uri);
            const dom = domain ? domain.nativePointer() : null;
            return this.native.call<number>(
              'virConnectDomainEventRegisterAny',
              conn,
              dom,
              eventId,
              callback,
              BigInt(route),
              null,
            );
          }),
        );
      }
    } catch (e) {
      await deregister();
      throw e;
    }
    let closed: Promise<void> | undefined;
    const sub: EventSubscription = {
      close: () => {
        closed ??= (async () => {
          this.subscriptions.delete(sub);
          await deregister();
        })();
        return closed;
      },
    };
    this.subscriptions.add(sub);
    return sub;
  }

  /**
   * Lifecycle events as an Observable: each subscriber registers its own libvirt callback (on
   * subscription) and deregisters it when it unsubscribes. A registration failure is the
   * Observable's error.
   */
  lifecycleEvents(options: { domain?: Domain } = {}): Observable<DomainLifecycleEvent> {
    return new Observable<DomainLifecycleEvent>((subscriber) => {
      let sub: LifecycleSubscription | undefined;
      let done = false;
      this.subscribeLifecycle((e) => subscriber.next(e), options).then(
        (s) => {
          if (done) void s.close();
          else sub = s;
        },
        (e) => subscriber.error(e),
      );
      return () => {
        done = true;
        void sub?.close().catch(() => {});
      };
    });
  }

  /**
   * Closes the connection: deregisters its event listeners, frees every domain and snapshot
   * handle made through it, closes it (`virConnectClose`) and, if it was the last open
   * connection, stops libvirt's event loop. Idempotent; calls made afterwards throw
   * `LibvirtClosedError`. {@link Connection.lastCloseRefs} then tells whether libvirt still held
   * references (handles freed outside this binding).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await Promise.allSettled([...this.subscriptions].map((s) => s.close()));
        await Promise.allSettled([...this.owned].map((h) => h.free()));
        await this.handle.release(async (p) => {
          this.lastCloseRefs = await this.native.call<number>('virConnectClose', p);
        });
      } finally {
        await this.shared.loop.release();
      }
    })();
    return this.closing;
  }

  /** References libvirt still held on the connection after {@link Connection.close} (0 = none leaked). */
  lastCloseRefs: number | undefined;

  private wrapDomain(p: Pointer): Domain {
    return new Domain(this, p);
  }
}
