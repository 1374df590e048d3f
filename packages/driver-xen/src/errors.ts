import { DriverError, ErrorCode, isNovaError, NovaError } from '@nova-lfs/core';
import { isLibvirtError, LibvirtErrorCode, VirErrorNumber } from '@nova-lfs/libvirt';

/** Stable error codes of the Xen driver (call failures are core `DriverError`s). */
export const XenErrorCode = {
  Unreachable: ErrorCode.XenUnreachable,
  UnsupportedImage: ErrorCode.XenUnsupportedImage,
  XmlValue: ErrorCode.XenXmlValue,
} as const;

/** libvirtd (libxl driver) does not answer on the connection URI. */
export class XenUnreachableError extends NovaError<{ uri: string }> {
  constructor(uri: string, options?: { cause?: unknown }) {
    super(XenErrorCode.Unreachable, `libvirt (Xen) does not answer on ${uri}`, { uri }, options);
  }
}

/** The image cannot boot on this driver (e.g. a container rootfs, an initramfs without a kernel). */
export class XenUnsupportedImageError extends NovaError<{ imageId: string; reason: string }> {
  constructor(imageId: string, reason: string) {
    super(XenErrorCode.UnsupportedImage, `image ${imageId} cannot boot on Xen: ${reason}`, {
      imageId,
      reason,
    });
  }
}

/**
 * A value that XML 1.0 cannot carry (NUL, most C0 control characters, lone surrogates, U+FFFE and
 * U+FFFF): no escaping can represent it, so the domain XML is refused. `field` names the spec
 * field (e.g. `metadata.displayName`, `cmdline`).
 */
export class XenXmlValueError extends NovaError<{ field: string; codePoint: number }> {
  constructor(field: string, codePoint: number) {
    super(
      XenErrorCode.XmlValue,
      `${field} holds U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}, which XML 1.0 cannot represent`,
      { field, codePoint },
    );
  }
}

/** Whether a failure means "no such domain" (libvirt's VIR_ERR_NO_DOMAIN). */
export function isNoDomain(e: unknown): boolean {
  return isLibvirtError(e, VirErrorNumber.NoDomain);
}

/** Whether a failure means the domain is not running (VIR_ERR_OPERATION_INVALID on a stopped domain). */
export function isNotRunning(e: unknown): boolean {
  return isLibvirtError(e, VirErrorNumber.OperationInvalid) && /not running/i.test((e as Error).message);
}

const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  VirErrorNumber.SystemError,
  VirErrorNumber.NoConnect,
  VirErrorNumber.Rpc,
  VirErrorNumber.OperationTimeout,
]);

/** What only the caller knows about a failure. */
export interface XenFailureClass {
  readonly retryable?: boolean;
  readonly reschedule?: boolean;
}

function classOf(e: unknown): XenFailureClass {
  if (
    isNovaError(e, XenErrorCode.UnsupportedImage) ||
    isNovaError(e, XenErrorCode.XmlValue) ||
    isNovaError(e, ErrorCode.ImageChecksum)
  )
    return { retryable: false, reschedule: false };
  if (isLibvirtError(e, VirErrorNumber.ConfigUnsupported)) return { retryable: false, reschedule: false };
  if (isNovaError(e, XenErrorCode.Unreachable) || isNovaError(e, LibvirtErrorCode.Closed))
    return { retryable: true };
  if (isLibvirtError(e) && RETRYABLE_CODES.has(e.details.code)) return { retryable: true };
  return {};
}

/**
 * Wraps a failure in a typed `DriverError` (driver `xen`) keeping it as `cause`: images and values
 * no host can take neither retry nor reschedule; a lost connection is retryable. `klass` wins.
 */
export function wrapXenError(
  operation: string,
  e: unknown,
  instanceId?: string,
  klass: XenFailureClass = {},
): DriverError {
  if (e instanceof DriverError) return e;
  const found = classOf(e);
  const retryable = klass.retryable ?? found.retryable;
  const reschedule = klass.reschedule ?? found.reschedule;
  return new DriverError(
    {
      driver: 'xen',
      operation,
      ...(instanceId ? { instanceId } : {}),
      ...(retryable === undefined ? {} : { retryable }),
      ...(reschedule === undefined ? {} : { reschedule }),
    },
    e instanceof Error ? e.message : String(e),
    { cause: e },
  );
}
