/**
 * Test helpers of `@nova-lfs/driver-kvm`: guest kernel lookup, a busybox initramfs that prints a
 * boot marker, a blank qcow2 maker, a libvirt availability probe, and the two libvirt hosts of
 * the move tests with their counting guest.
 * @packageDocumentation
 */
export {
  BOOT_MARKER,
  findGuestKernel,
  importGuestImages,
  makeBlankQcow2,
  makeInitramfs,
} from './guest-images.js';
export {
  type LibvirtProbe,
  libvirtAvailable,
  probeLibvirt,
  startLibvirtCommand,
} from './libvirt-available.js';
export { makeProbeInitramfs, PROBE } from './probe-guest.js';
export {
  COUNT_RE,
  counts,
  firstUri,
  importCounterImages,
  libvirtMissing,
  makeCounterInitramfs,
  secondUri,
  twoHostsMissing,
} from './two-hosts.js';
