/**
 * Test helpers of `@nova-lfs/driver-kvm`: guest kernel lookup, a busybox initramfs that prints a
 * boot marker, a blank qcow2 maker, and a libvirt availability probe.
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
