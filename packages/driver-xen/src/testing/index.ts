/**
 * Test helpers of `@nova-lfs/driver-xen`: the Xen PV test guest and the project's nested Xen.
 * @packageDocumentation
 */
export {
  findXenGuestKernel,
  importXenGuestImages,
  makeXenGuestInitramfs,
  XEN_BOOT_MARKER,
} from './guest-images.js';
export {
  type NestedXen,
  nestedXenDir,
  nestedXenUnavailableReason,
  startNestedXen,
  stopNestedXen,
} from './nested-xen.js';
