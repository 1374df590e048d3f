import { findGuestKernel } from './testing/index.js';
import { twoHostsMissing } from './testing/two-hosts.js';

export {
  COUNT_RE,
  counts,
  firstUri,
  makeCounterInitramfs,
  secondUri,
} from './testing/two-hosts.js';

/**
 * Both libvirt hosts (the first libvirtd and the second one in its own mount namespace) and the
 * guest kernel, decided once per test file. With CI=true a missing one is an error, not a skip.
 */
export const kernel = await findGuestKernel();
const reason =
  (await twoHostsMissing()) ??
  (kernel === undefined
    ? 'no /boot/vmlinuz-*-cloud-amd64; install it with: apt-get install linux-image-cloud-amd64'
    : undefined);
export const twoHosts = reason === undefined;
if (reason !== undefined) {
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping KVM live-migration tests: ${reason}`);
}
