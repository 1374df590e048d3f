import { DriverError, NovaError } from '@nova-lfs/core';

/** Stable error codes of the KVM driver (call failures are core `DriverError`s). */
export const KvmErrorCode = {
  BindingUnavailable: 'NLFS_KVM_BINDING_UNAVAILABLE',
  Unreachable: 'NLFS_KVM_UNREACHABLE',
  UnsupportedImage: 'NLFS_KVM_UNSUPPORTED_IMAGE',
} as const;

/** The libvirt binding (`@unraid/libvirt`, an optional dependency) could not be loaded. */
export class LibvirtBindingUnavailableError extends NovaError<{ module: string }> {
  constructor(module: string, options?: { cause?: unknown }) {
    super(
      KvmErrorCode.BindingUnavailable,
      `the libvirt binding ${module} is not installed or did not build (it needs Debian's libvirt-dev at install time)`,
      { module },
      options,
    );
  }
}

/** libvirtd does not answer on the connection URI. */
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

/** Whether a libvirt error means "no such domain". */
export function isNoDomain(e: unknown): boolean {
  return /no domain|not found|Domain not found/i.test((e as Error)?.message ?? '');
}

/** Wraps a libvirt failure in a typed `DriverError` keeping the original as `cause`. */
export function wrapLibvirtError(operation: string, e: unknown, instanceId?: string): DriverError {
  if (e instanceof DriverError || e instanceof NovaError) return e as DriverError;
  return new DriverError(
    { driver: 'kvm', operation, ...(instanceId ? { instanceId } : {}) },
    e instanceof Error ? e.message : String(e),
    { cause: e },
  );
}
