/**
 * Test helpers of `@nova-lfs/driver-lxc`: an availability probe.
 * @packageDocumentation
 */
export { installLxcCommand, lxcAvailable, lxcUnavailableReason } from './lxc-available.js';
