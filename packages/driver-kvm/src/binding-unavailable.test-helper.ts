/**
 * Run as a child process by libvirt-binding.test.ts inside a mount namespace where libvirt.so.0
 * does not load: prints, as one JSON line, what the driver and the probe report then.
 */
import { KvmDriver } from './kvm-driver.js';
import { probeLibvirt } from './testing/index.js';

const driver = new KvmDriver({ uri: 'test:///default' });
const report = await driver.getHostReport().catch((e: unknown) => e);
const listed = await driver.listInstances().catch((e: unknown) => e);
const probe = await probeLibvirt('test:///default');
const pick = (e: unknown) => {
  const x = e as {
    code?: string;
    message?: string;
    details?: unknown;
    retryable?: boolean;
    cause?: { code?: string };
  };
  return {
    code: x?.code,
    message: x?.message,
    details: x?.details,
    retryable: x?.retryable,
    causeCode: x?.cause?.code,
  };
};
console.log(
  JSON.stringify({
    report: pick(report),
    listed: pick(listed),
    probe: { available: probe.available, problem: probe.available ? undefined : probe.problem },
  }),
);
