/**
 * `@nova-lfs/driver-kvm`: virtual machines through libvirt and QEMU/KVM.
 * @packageDocumentation
 */
export type { DiskSpec, DomainSpec, InstanceMetadata } from './domain-spec.js';
export { buildDomainXml, NOVA_LFS_XML_NS, parseInstanceMetadata } from './domain-xml.js';
export {
  isNoDomain,
  KvmErrorCode,
  type KvmFailureClass,
  KvmScopeConflictError,
  LibvirtBindingUnavailableError,
  LibvirtUnreachableError,
  libvirtRetryable,
  UnsupportedImageError,
  wrapLibvirtError,
} from './errors.js';
export { KvmDriver, type KvmDriverOptions, kvmCapabilities } from './kvm-driver.js';
export {
  defaultLibvirtConnector,
  LIBVIRT_MODULE,
  type LibvirtConnector,
  openLibvirt,
} from './libvirt-binding.js';
export { powerStateOfDomain, powerStateOfEvent } from './power-state.js';
export { createOverlay } from './qemu-img.js';
export { kvmDriverToken, registerKvmDriver } from './register.js';
