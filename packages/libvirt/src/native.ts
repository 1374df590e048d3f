/**
 * libvirt's C API (`libvirt.so.0`) through koffi: the library, its structs and the functions this
 * package calls. Internal: the public surface is `Connection`, `Domain` and `DomainSnapshot`.
 *
 * Every libvirt call goes through {@link LibvirtNative.call} (on libuv's thread pool, koffi's
 * `.async`) or {@link LibvirtNative.callSync} (on the main thread, only for calls that read local
 * handle fields and never talk to a daemon). Both decode a failure into a `LibvirtError`.
 */
import type * as Koffi from 'koffi';
import { ErrorAttributor } from './error-attribution.js';
import { type ErrorAttribution, LibvirtError, LibvirtUnavailableError, type RawVirError } from './errors.js';

type KoffiModule = typeof Koffi;
type IKoffiLib = Koffi.LibraryHandle;
type KoffiFunction = ReturnType<IKoffiLib['func']>;

/** How a return value says the call failed. */
type Failure = 'null' | 'negative' | 'none';

const SIGNATURES = {
  // library
  virGetVersion:
    'int virGetVersion(_Out_ unsigned long *libVer, const char *type, _Out_ unsigned long *typeVer)',
  virSetErrorFunc: 'void virSetErrorFunc(void *userData, virErrorFunc *handler)',
  virEventRegisterDefaultImpl: 'int virEventRegisterDefaultImpl(void)',
  virEventRunDefaultImpl: 'int virEventRunDefaultImpl(void)',
  virEventAddTimeout:
    'int virEventAddTimeout(int frequency, virEventTimeoutCallback *cb, void *opaque, void *ff)',
  virEventRemoveTimeout: 'int virEventRemoveTimeout(int timer)',
  // connection
  virConnectOpen: 'void *virConnectOpen(const char *name)',
  virConnectOpenReadOnly: 'void *virConnectOpenReadOnly(const char *name)',
  virConnectClose: 'int virConnectClose(void *conn)',
  virConnectGetHostname: 'char *! virConnectGetHostname(void *conn)',
  virConnectGetURI: 'char *! virConnectGetURI(void *conn)',
  virConnectGetCapabilities: 'char *! virConnectGetCapabilities(void *conn)',
  virConnectGetLibVersion: 'int virConnectGetLibVersion(void *conn, _Out_ unsigned long *libVer)',
  virConnectGetVersion: 'int virConnectGetVersion(void *conn, _Out_ unsigned long *hvVer)',
  virConnectGetType: 'const char *virConnectGetType(void *conn)',
  virNodeGetInfo: 'int virNodeGetInfo(void *conn, _Out_ virNodeInfo *info)',
  virConnectListAllDomains:
    'int virConnectListAllDomains(void *conn, _Out_ void **domains, unsigned int flags)',
  virConnectDomainEventRegisterAny:
    'int virConnectDomainEventRegisterAny(void *conn, void *dom, int eventID, void *cb, void *opaque, void *freecb)',
  virConnectDomainEventDeregisterAny: 'int virConnectDomainEventDeregisterAny(void *conn, int callbackID)',
  virConnectCompareCPU: 'int virConnectCompareCPU(void *conn, const char *xmlDesc, unsigned int flags)',
  virConnectCompareHypervisorCPU:
    'int virConnectCompareHypervisorCPU(void *conn, const char *emulator, const char *arch, const char *machine, const char *virttype, const char *xmlCPU, unsigned int flags)',
  // domains
  virDomainDefineXMLFlags: 'void *virDomainDefineXMLFlags(void *conn, const char *xml, unsigned int flags)',
  virDomainCreateXML: 'void *virDomainCreateXML(void *conn, const char *xml, unsigned int flags)',
  virDomainLookupByName: 'void *virDomainLookupByName(void *conn, const char *name)',
  virDomainLookupByUUIDString: 'void *virDomainLookupByUUIDString(void *conn, const char *uuid)',
  virDomainFree: 'int virDomainFree(void *dom)',
  virDomainGetName: 'const char *virDomainGetName(void *dom)',
  virDomainGetUUIDString: 'int virDomainGetUUIDString(void *dom, _Out_ uint8_t *buf)',
  virDomainGetID: 'unsigned int virDomainGetID(void *dom)',
  virDomainCreateWithFlags: 'int virDomainCreateWithFlags(void *dom, unsigned int flags)',
  virDomainDestroyFlags: 'int virDomainDestroyFlags(void *dom, unsigned int flags)',
  virDomainShutdownFlags: 'int virDomainShutdownFlags(void *dom, unsigned int flags)',
  virDomainReboot: 'int virDomainReboot(void *dom, unsigned int flags)',
  virDomainSuspend: 'int virDomainSuspend(void *dom)',
  virDomainResume: 'int virDomainResume(void *dom)',
  virDomainUndefineFlags: 'int virDomainUndefineFlags(void *dom, unsigned int flags)',
  virDomainGetXMLDesc: 'char *! virDomainGetXMLDesc(void *dom, unsigned int flags)',
  virDomainGetInfo: 'int virDomainGetInfo(void *dom, _Out_ virDomainInfo *info)',
  virDomainGetState:
    'int virDomainGetState(void *dom, _Out_ int *state, _Out_ int *reason, unsigned int flags)',
  virDomainIsActive: 'int virDomainIsActive(void *dom)',
  virDomainIsPersistent: 'int virDomainIsPersistent(void *dom)',
  virDomainManagedSave: 'int virDomainManagedSave(void *dom, unsigned int flags)',
  virDomainHasManagedSaveImage: 'int virDomainHasManagedSaveImage(void *dom, unsigned int flags)',
  virDomainManagedSaveRemove: 'int virDomainManagedSaveRemove(void *dom, unsigned int flags)',
  virDomainAttachDeviceFlags:
    'int virDomainAttachDeviceFlags(void *dom, const char *xml, unsigned int flags)',
  virDomainDetachDeviceFlags:
    'int virDomainDetachDeviceFlags(void *dom, const char *xml, unsigned int flags)',
  virDomainGetJobInfo: 'int virDomainGetJobInfo(void *dom, _Out_ virDomainJobInfo *info)',
  virDomainGetJobStats:
    'int virDomainGetJobStats(void *dom, _Out_ int *type, _Out_ void **params, _Out_ int *nparams, unsigned int flags)',
  virDomainAbortJob: 'int virDomainAbortJob(void *dom)',
  virDomainMigrateToURI3:
    'int virDomainMigrateToURI3(void *dom, const char *dconnuri, void *params, unsigned int nparams, unsigned int flags)',
  virDomainMigrate3:
    'void *virDomainMigrate3(void *dom, void *dconn, void *params, unsigned int nparams, unsigned int flags)',
  virDomainMigrateSetMaxSpeed:
    'int virDomainMigrateSetMaxSpeed(void *dom, unsigned long bandwidth, unsigned int flags)',
  virDomainMigrateGetMaxDowntime:
    'int virDomainMigrateGetMaxDowntime(void *dom, _Out_ unsigned long long *downtime, unsigned int flags)',
  virDomainMigrateStartPostCopy: 'int virDomainMigrateStartPostCopy(void *dom, unsigned int flags)',
  virDomainMigrateSetMaxDowntime:
    'int virDomainMigrateSetMaxDowntime(void *dom, unsigned long long downtime, unsigned int flags)',
  // snapshots
  virDomainSnapshotCreateXML:
    'void *virDomainSnapshotCreateXML(void *dom, const char *xml, unsigned int flags)',
  virDomainListAllSnapshots:
    'int virDomainListAllSnapshots(void *dom, _Out_ void **snaps, unsigned int flags)',
  virDomainSnapshotLookupByName:
    'void *virDomainSnapshotLookupByName(void *dom, const char *name, unsigned int flags)',
  virDomainSnapshotCurrent: 'void *virDomainSnapshotCurrent(void *dom, unsigned int flags)',
  virDomainSnapshotGetName: 'const char *virDomainSnapshotGetName(void *snap)',
  virDomainSnapshotGetXMLDesc: 'char *! virDomainSnapshotGetXMLDesc(void *snap, unsigned int flags)',
  virDomainRevertToSnapshot: 'int virDomainRevertToSnapshot(void *snap, unsigned int flags)',
  virDomainSnapshotDelete: 'int virDomainSnapshotDelete(void *snap, unsigned int flags)',
  virDomainSnapshotFree: 'int virDomainSnapshotFree(void *snap)',
  // typed parameters (libvirt allocates them; local, no daemon)
  virTypedParamsAddInt:
    'int virTypedParamsAddInt(_Inout_ void **params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, int value)',
  virTypedParamsAddUInt:
    'int virTypedParamsAddUInt(_Inout_ void **params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, unsigned int value)',
  virTypedParamsAddLLong:
    'int virTypedParamsAddLLong(_Inout_ void **params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, long long value)',
  virTypedParamsAddULLong:
    'int virTypedParamsAddULLong(_Inout_ void **params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, unsigned long long value)',
  virTypedParamsAddDouble:
    'int virTypedParamsAddDouble(_Inout_ void **params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, double value)',
  virTypedParamsAddBoolean:
    'int virTypedParamsAddBoolean(_Inout_ void **params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, int value)',
  virTypedParamsAddString:
    'int virTypedParamsAddString(_Inout_ void **params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, const char *value)',
  virTypedParamsFree: 'void virTypedParamsFree(void *params, int nparams)',
} as const;

/** Name of a libvirt function this package declares. */
export type LibvirtFunction = keyof typeof SIGNATURES;

/** A libvirt pointer (koffi 3 passes pointers as bigint; NULL comes back as null). */
export type Pointer = bigint;

/** `virNodeInfo` as koffi decodes it. */
export interface NativeNodeInfo {
  model: string;
  memory: number | bigint;
  cpus: number;
  mhz: number;
  nodes: number;
  sockets: number;
  cores: number;
  threads: number;
}

/** `virDomainInfo` as koffi decodes it. */
export interface NativeDomainInfo {
  state: number;
  maxMem: number | bigint;
  memory: number | bigint;
  nrVirtCpu: number;
  cpuTime: number | bigint;
}

/** `virDomainJobInfo` as koffi decodes it (all counters are `unsigned long long`). */
export interface NativeJobInfo {
  type: number;
  timeElapsed: number | bigint;
  timeRemaining: number | bigint;
  dataTotal: number | bigint;
  dataProcessed: number | bigint;
  dataRemaining: number | bigint;
  memTotal: number | bigint;
  memProcessed: number | bigint;
  memRemaining: number | bigint;
  fileTotal: number | bigint;
  fileProcessed: number | bigint;
  fileRemaining: number | bigint;
}

/** Size of `virTypedParameter` on 64-bit Linux: char field[80], int type, 4 bytes padding, 8-byte union. */
export const TYPED_PARAM_SIZE = 96;

/** The loaded library: its koffi handles, the error handler and the call helpers. */
export class LibvirtNative {
  readonly koffi: KoffiModule;
  private readonly fns: Record<LibvirtFunction, KoffiFunction>;
  private readonly failureOf: Record<LibvirtFunction, Failure>;
  readonly errors = new ErrorAttributor();
  readonly types: {
    virError: Koffi.TypeObject;
    lifecycleCallback: Koffi.TypeObject;
    deviceCallback: Koffi.TypeObject;
    timeoutCallback: Koffi.TypeObject;
  };
  /** Kept referenced for the process's life: libvirt holds their addresses. */
  private readonly errorHandler: bigint;

  constructor(koffi: KoffiModule, lib: IKoffiLib) {
    this.koffi = koffi;
    const virError = koffi.struct('virError', {
      code: 'int',
      domain: 'int',
      message: 'const char *',
      level: 'int',
      conn: 'void *',
      dom: 'void *',
      str1: 'const char *',
      str2: 'const char *',
      str3: 'const char *',
      int1: 'int',
      int2: 'int',
      net: 'void *',
    });
    koffi.struct('virNodeInfo', {
      model: koffi.array('char', 32, 'String'),
      memory: 'unsigned long',
      cpus: 'unsigned int',
      mhz: 'unsigned int',
      nodes: 'unsigned int',
      sockets: 'unsigned int',
      cores: 'unsigned int',
      threads: 'unsigned int',
    });
    koffi.struct('virDomainInfo', {
      state: 'unsigned char',
      maxMem: 'unsigned long',
      memory: 'unsigned long',
      nrVirtCpu: 'unsigned short',
      cpuTime: 'unsigned long long',
    });
    koffi.struct('virDomainJobInfo', {
      type: 'int',
      timeElapsed: 'unsigned long long',
      timeRemaining: 'unsigned long long',
      dataTotal: 'unsigned long long',
      dataProcessed: 'unsigned long long',
      dataRemaining: 'unsigned long long',
      memTotal: 'unsigned long long',
      memProcessed: 'unsigned long long',
      memRemaining: 'unsigned long long',
      fileTotal: 'unsigned long long',
      fileProcessed: 'unsigned long long',
      fileRemaining: 'unsigned long long',
    });
    koffi.proto('void virErrorFunc(void *userData, void *error)');
    const timeoutCallback = koffi.proto('void virEventTimeoutCallback(int timer, void *opaque)');
    const lifecycleCallback = koffi.proto(
      'int virConnectDomainEventCallback(void *conn, void *dom, int event, int detail, void *opaque)',
    );
    // VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED and _DEVICE_REMOVAL_FAILED share this signature
    const deviceCallback = koffi.proto(
      'void virConnectDomainEventDeviceCallback(void *conn, void *dom, const char *devAlias, void *opaque)',
    );
    this.types = { virError, lifecycleCallback, deviceCallback, timeoutCallback };

    const fns = {} as Record<LibvirtFunction, KoffiFunction>;
    const failureOf = {} as Record<LibvirtFunction, Failure>;
    for (const [name, sig] of Object.entries(SIGNATURES) as [LibvirtFunction, string][]) {
      fns[name] = lib.func(sig);
      failureOf[name] = /^(const )?[a-z ]*\*/.test(sig)
        ? 'null'
        : sig.startsWith('void ')
          ? 'none'
          : 'negative';
    }
    // These return an unsigned id or a const string that is NULL only for an invalid handle.
    failureOf.virDomainGetID = 'none';
    this.fns = fns;
    this.failureOf = failureOf;

    // One global handler: it replaces libvirt's default (printing to stderr) and receives every
    // failing call's error from the thread that ran it (see ErrorAttributor).
    this.errorHandler = koffi.register((_userData: unknown, error: unknown) => {
      try {
        this.errors.report(this.decodeError(error));
      } catch {
        // never throw into libvirt
      }
    }, koffi.pointer('virErrorFunc'));
    fns.virSetErrorFunc(null, this.errorHandler);
  }

  /** Decodes a `virErrorPtr` (valid only while the handler runs). */
  decodeError(ptr: unknown): RawVirError {
    const e = this.koffi.decode(ptr, this.types.virError) as RawVirError;
    return {
      code: e.code,
      domain: e.domain,
      message: e.message,
      level: e.level,
      str1: e.str1,
      str2: e.str2,
      str3: e.str3,
      int1: e.int1,
      int2: e.int2,
    };
  }

  /**
   * Runs `name` on libuv's thread pool (koffi `.async`) and resolves with its return value; a
   * failure (NULL or a negative number, by the function's C return type) rejects with a
   * `LibvirtError` holding the error libvirt reported for the call.
   */
  call<T = unknown>(name: LibvirtFunction, ...args: unknown[]): Promise<T> {
    const fn = this.fns[name];
    const id = this.errors.begin();
    return new Promise<T>((resolve, reject) => {
      try {
        fn.async(...args, (err: unknown, result: unknown) => {
          if (err) {
            this.errors.end(id, false);
            reject(err);
            return;
          }
          const failed = this.failed(name, result);
          const { error, attribution } = this.errors.end(id, failed);
          if (failed) reject(this.toError(name, error, attribution));
          else resolve(result as T);
        });
      } catch (e) {
        this.errors.end(id, false);
        reject(e);
      }
    });
  }

  /**
   * Runs `name` on the main thread. Only for calls that read handle fields or build typed
   * parameters locally, never for anything that can talk to a daemon or wait.
   */
  callSync<T = unknown>(name: LibvirtFunction, ...args: unknown[]): T {
    const id = this.errors.begin(true);
    let result: unknown;
    try {
      result = this.fns[name](...args);
    } catch (e) {
      this.errors.end(id, false);
      throw e;
    }
    const failed = this.failed(name, result);
    const { error, attribution } = this.errors.end(id, failed);
    if (failed) throw this.toError(name, error, attribution);
    return result as T;
  }

  private failed(name: LibvirtFunction, result: unknown): boolean {
    switch (this.failureOf[name]) {
      case 'null':
        return result === null || result === undefined || result === 0n;
      case 'negative':
        return typeof result === 'number' && result < 0;
      default:
        return false;
    }
  }

  private toError(name: string, error: RawVirError | undefined, attribution: ErrorAttribution): LibvirtError {
    return new LibvirtError(name, error, attribution);
  }
}

let loaded: Promise<LibvirtNative> | undefined;

/**
 * Loads koffi and `libvirt.so.0` once per process, installs the error handler and registers
 * libvirt's default event loop implementation (`virEventRegisterDefaultImpl`), which libvirt
 * requires before the first connection is opened for events and keepalive to work.
 * @throws LibvirtUnavailableError when koffi's binary or libvirt.so.0 does not load.
 */
export function loadLibvirtNative(): Promise<LibvirtNative> {
  loaded ??= (async () => {
    let koffi: KoffiModule;
    try {
      const mod = (await import('koffi')) as KoffiModule & { default?: KoffiModule };
      koffi = mod.default ?? mod;
    } catch (e) {
      throw new LibvirtUnavailableError('koffi', e);
    }
    let lib: IKoffiLib;
    try {
      lib = koffi.load('libvirt.so.0');
    } catch (e) {
      throw new LibvirtUnavailableError('libvirt', e);
    }
    const native = new LibvirtNative(koffi, lib);
    native.callSync('virEventRegisterDefaultImpl');
    return native;
  })();
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}
