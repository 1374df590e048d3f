import { ConfigurationError, DriverError, ErrorCode, isNovaError, NovaError } from '@nova-lfs/core';
import { isLibvirtError, VirErrorDomain, VirErrorNumber } from '@nova-lfs/libvirt';

/** Stable error codes of the KVM driver (call failures are core `DriverError`s). */
export const KvmErrorCode = {
  BindingUnavailable: ErrorCode.KvmBindingUnavailable,
  Unreachable: ErrorCode.KvmUnreachable,
  UnsupportedImage: ErrorCode.KvmUnsupportedImage,
} as const;

/**
 * The libvirt binding (`@nova-lfs/libvirt`) could not load koffi's prebuilt binary or
 * `libvirt.so.0` (Debian's `libvirt0`). `details.loadError` is the loader's own message (with what
 * to install); the cause keeps the binding's `LibvirtUnavailableError`. Distinct from
 * {@link LibvirtUnreachableError}: libvirtd was never asked.
 */
export class LibvirtBindingUnavailableError extends NovaError<{ module: string; loadError: string }> {
  constructor(module: string, options?: { cause?: unknown }) {
    const loadError = options?.cause instanceof Error ? options.cause.message : String(options?.cause);
    super(
      KvmErrorCode.BindingUnavailable,
      `the libvirt binding ${module} did not load: ${loadError.split('\n')[0]}`,
      { module, loadError },
      options,
    );
  }
}

/** libvirtd does not answer on the connection URI (the binding loaded). */
export class LibvirtUnreachableError extends NovaError<{ uri: string }> {
  constructor(uri: string, options?: { cause?: unknown }) {
    super(KvmErrorCode.Unreachable, `libvirt does not answer on ${uri}`, { uri }, options);
  }
}

/** The image cannot boot with this driver (e.g. a container rootfs, or an initramfs without a kernel). */
export class UnsupportedImageError extends NovaError<{ imageId: string; reason: string }> {
  constructor(imageId: string, reason: string) {
    super(KvmErrorCode.UnsupportedImage, `image ${imageId} cannot boot on KVM: ${reason}`, {
      imageId,
      reason,
    });
  }
}

/**
 * A second live `KvmDriver` in this process claimed a metadata scope (`hostId`) that another
 * driver already holds on the same libvirtd: each would list the other's domains as its own, and
 * reconciliation would take them for orphans. Give each host its own `hostId`.
 */
export class KvmScopeConflictError extends ConfigurationError {
  constructor(hostId: string, daemon: string) {
    super(
      'hostId',
      `another KvmDriver in this process already serves hostId ${JSON.stringify(hostId)} on ${daemon}: give each host its own hostId (new KvmDriver({ hostId }))`,
    );
  }
}

/** Whether a libvirt error means "no such domain" (`VIR_ERR_NO_DOMAIN`). */
export function isNoDomain(e: unknown): boolean {
  if (isLibvirtError(e)) return e.details.code === VirErrorNumber.NoDomain;
  return /no domain|not found|Domain not found/i.test((e as Error)?.message ?? '');
}

/** libvirt error numbers of a busy daemon or a lost connection, worth trying again. */
const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  VirErrorNumber.Rpc,
  VirErrorNumber.OperationTimeout, // "cannot acquire state change lock"
  VirErrorNumber.ResourceBusy,
  VirErrorNumber.AgentUnresponsive,
]);

/** Messages of a lost, refused or timed-out connection to libvirtd, or of a daemon busy with the domain. */
const RETRYABLE =
  /failed to connect socket|cannot recv data|cannot write data|client socket is closed|end of file while reading|connection reset|broken pipe|keepalive timeout|timed out during operation|cannot acquire state change lock|resource busy/i;

/**
 * Whether trying the same libvirt call again may help: yes for a lost or refused connection and a
 * busy daemon (state change lock timeouts); undefined otherwise. Read from libvirt's error number
 * and domain (a system error raised by the RPC layer is a connection problem), then its message.
 */
export function libvirtRetryable(e: unknown): boolean | undefined {
  if (isNovaError(e, KvmErrorCode.Unreachable)) return true;
  if (isLibvirtError(e)) {
    const { code, domain } = e.details;
    if (RETRYABLE_CODES.has(code)) return true;
    if (
      code === VirErrorNumber.SystemError &&
      (domain === VirErrorDomain.Rpc || domain === VirErrorDomain.Remote)
    )
      return true;
  }
  return RETRYABLE.test((e as Error)?.message ?? '') ? true : undefined;
}

/** What only the caller knows about a failure (e.g. that no host could run this image). */
export interface KvmFailureClass {
  readonly retryable?: boolean;
  readonly reschedule?: boolean;
}

/**
 * The class of a failure no KVM host can fix: an image the driver cannot boot, bytes failing their
 * sha256, or a configuration libvirt calls unsupported (e.g. more vCPUs than the machine type
 * allows). Undefined when another host may succeed.
 */
function permanentClass(e: unknown): KvmFailureClass | undefined {
  if (isNovaError(e, KvmErrorCode.UnsupportedImage) || isNovaError(e, ErrorCode.ImageChecksum))
    return { retryable: false, reschedule: false };
  if (
    isLibvirtError(e, VirErrorNumber.ConfigUnsupported) ||
    /^unsupported configuration/i.test((e as Error)?.message ?? '')
  )
    return { retryable: false, reschedule: false };
  if (isNovaError(e, KvmErrorCode.BindingUnavailable)) return { retryable: false };
  return undefined;
}

/**
 * Wraps a libvirt failure in a typed `DriverError` keeping the original as `cause`, classified:
 * `retryable` from {@link libvirtRetryable}, `reschedule: false` for what no host can fix; `klass`
 * wins over both.
 */
export function wrapLibvirtError(
  operation: string,
  e: unknown,
  instanceId?: string,
  klass: KvmFailureClass = {},
): DriverError {
  if (e instanceof DriverError) return e;
  const found = permanentClass(e) ?? { retryable: libvirtRetryable(e) };
  const retryable = klass.retryable ?? found.retryable;
  const reschedule = klass.reschedule ?? found.reschedule;
  return new DriverError(
    {
      driver: 'kvm',
      operation,
      ...(instanceId ? { instanceId } : {}),
      ...(retryable === undefined ? {} : { retryable }),
      ...(reschedule === undefined ? {} : { reschedule }),
    },
    e instanceof Error ? e.message : String(e),
    { cause: e },
  );
}
