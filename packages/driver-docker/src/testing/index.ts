/**
 * Test helpers of `@nova-lfs/driver-docker`: a busybox rootfs builder and an availability probe.
 * @packageDocumentation
 */
export { makeBusyboxRootfs } from './busybox-rootfs.js';
export { dockerAvailable, startDockerCommand } from './docker-available.js';
