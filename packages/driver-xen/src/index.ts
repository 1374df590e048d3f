/**
 * `@nova-lfs/driver-xen`: Xen domains (PV, PVH, HVM) as Nova LFS instances through libvirt's libxl
 * driver, over the project's own libvirt binding (`@nova-lfs/libvirt`).
 * @packageDocumentation
 */
export type { XenDiskSpec, XenDomainSpec, XenGuestType, XenInstanceMetadata } from './domain-spec.js';
export {
  buildXenDomainXml,
  DEFAULT_HVM_LOADER,
  NOVA_LFS_XML_NS,
  parseXenInstanceMetadata,
  xmlText,
} from './domain-xml.js';
export {
  isNoDomain,
  wrapXenError,
  XenErrorCode,
  type XenFailureClass,
  XenUnreachableError,
  XenUnsupportedImageError,
  XenXmlValueError,
} from './errors.js';
export { ImageStage } from './image-stage.js';
export { powerStateOfXenDomain } from './power-state.js';
export { registerXenDriver, xenDriverToken } from './register.js';
export { XenDriver, type XenDriverOptions, xenCapabilities } from './xen-driver.js';
