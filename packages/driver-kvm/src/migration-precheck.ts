import { CompareCpuFlags, type Connection, isLibvirtError, VirErrorNumber } from '@nova-lfs/libvirt';
import { create } from 'xmlbuilder2';
import type { LiveMigrationRefusal } from './live-migration-errors.js';
import type { DomainMoveFacts } from './migration-xml.js';

/** What a failed pre-check found: the reason and the words for the caller. */
export interface PrecheckFailure {
  readonly reason: LiveMigrationRefusal;
  readonly message: string;
}

interface CapsElement {
  getElementsByTagName(name: string): ArrayLike<CapsElement>;
  getAttribute(name: string): string | null;
  textContent: string | null;
}

/** The facts of a host's capabilities XML (`virConnectGetCapabilities`) a migration needs. */
export interface HostCapabilities {
  /** `<host><uuid>`: libvirt refuses a migration between two hosts with one UUID. */
  readonly hostUuid: string | undefined;
  /** Guest arch -> the domain (virt) types the hypervisor offers for it. */
  readonly guests: ReadonlyMap<string, ReadonlySet<string>>;
}

/** Reads {@link HostCapabilities} from capabilities XML. */
export function parseCapabilities(xml: string): HostCapabilities {
  const root = create(xml).root().node as unknown as CapsElement;
  const host = root.getElementsByTagName('host')[0];
  const hostUuid = host?.getElementsByTagName('uuid')[0]?.textContent?.trim() || undefined;
  const guests = new Map<string, Set<string>>();
  const gs = root.getElementsByTagName('guest');
  for (let i = 0; i < gs.length; i++) {
    const arch = gs[i]!.getElementsByTagName('arch')[0];
    const name = arch?.getAttribute('name');
    if (!arch || !name) continue;
    const types = guests.get(name) ?? new Set<string>();
    const doms = arch.getElementsByTagName('domain');
    for (let j = 0; j < doms.length; j++) {
      const t = doms[j]!.getAttribute('type');
      if (t) types.add(t);
    }
    guests.set(name, types);
  }
  return { hostUuid, guests };
}

/**
 * Whether the destination's hypervisor can run the guest: a different libvirt host (host UUID), a
 * guest of the same arch and virt type, and (when the domain has a CPU model) the same CPU, as
 * `virConnectCompareHypervisorCPU` on the destination judges it (libvirt names the missing
 * features). Undefined when it can.
 */
export async function checkDestinationHypervisor(
  destination: Connection,
  source: HostCapabilities,
  facts: DomainMoveFacts,
): Promise<PrecheckFailure | undefined> {
  const caps = parseCapabilities(await destination.capabilities());
  if (caps.hostUuid !== undefined && caps.hostUuid === source.hostUuid)
    return {
      reason: 'same-host',
      message: `source and destination are the same libvirt host (host UUID ${caps.hostUuid})`,
    };
  if (!caps.guests.get(facts.arch)?.has(facts.virtType))
    return {
      reason: 'arch-unsupported',
      message: `the destination's hypervisor offers no ${facts.virtType} guest of arch ${facts.arch}`,
    };
  if (facts.cpuXml === undefined) return undefined;
  try {
    await destination.compareHypervisorCpu(
      facts.cpuXml,
      { arch: facts.arch, virtType: facts.virtType, ...(facts.machine ? { machine: facts.machine } : {}) },
      CompareCpuFlags.FailIncompatible,
    );
    return undefined;
  } catch (e) {
    if (isLibvirtError(e, VirErrorNumber.CpuIncompatible))
      return {
        reason: 'cpu-incompatible',
        message: `the destination cannot provide the guest's CPU: ${e.details.message}`,
      };
    throw e;
  }
}
