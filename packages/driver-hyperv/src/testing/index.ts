/**
 * Test helpers of `@nova-lfs/driver-hyperv`: how to reach the project's FAKE Hyper-V host (a real
 * sshd on loopback whose forced command emulates the driver's PowerShell scripts; not Hyper-V).
 * @packageDocumentation
 */
export {
  FAKE_HYPERV_BASE,
  type FakeHyperVHost,
  fakeHyperVHost,
  startFakeHyperVCommand,
} from './fake-host.js';
