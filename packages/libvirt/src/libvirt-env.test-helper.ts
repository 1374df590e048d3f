import { Connection, isLibvirtError, LibvirtUnavailableError } from './index.js';

/** The command that starts libvirtd here (printed when qemu:///system tests skip). */
export const startLibvirtCommand = 'bash scripts/services/start-libvirt.sh';

async function probe(uri: string): Promise<string | undefined> {
  try {
    const c = await Connection.open(uri);
    await c.close();
    return undefined;
  } catch (e) {
    if (e instanceof LibvirtUnavailableError) return e.message;
    const why = isLibvirtError(e) ? `${e.details.codeName}: ${e.details.message}` : String(e);
    return `libvirt does not answer on ${uri} (${why}); start it with: ${startLibvirtCommand}`;
  }
}

/**
 * Whether libvirt's in-process test driver (`test:///default`) and libvirtd (`qemu:///system`)
 * answer, decided once per test file. With CI=true an absent one is an error, not a skip.
 */
export async function libvirtEnv(needs: 'test' | 'qemu'): Promise<boolean> {
  const uri = needs === 'test' ? 'test:///default' : 'qemu:///system';
  const reason = await probe(uri);
  if (reason === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping libvirt ${needs} tests: ${reason}`);
  return false;
}

/** A domain XML for the test driver (`test:///default`), which accepts any type. */
export function testDomainXml(name: string, memoryMiB = 64): string {
  return `<domain type='test'><name>${name}</name><memory unit='MiB'>${memoryMiB}</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`;
}

/** A name unique to this test run. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}
