import { type PortBinding, ValidationError } from '@nova-lfs/core';
import { create } from 'xmlbuilder2';

/** An xmlbuilder2 node (the package does not export its interface type from its entry point). */
type XMLBuilder = ReturnType<typeof create>;

/**
 * A virtio network interface as the driver plugs it: a tap device libvirt creates on the host
 * (`<interface type='ethernet'>`, not attached to anything: no traffic leaves the host unless the
 * network adapter wires the tap), or a port on an existing Linux bridge (`type='bridge'`).
 */
export interface NicDevice {
  /** Guest MAC address, lower case (`fa:16:3e:..`). */
  readonly mac: string;
  /** Host tap device name (at most 15 characters). */
  readonly tap: string;
  /** Linux bridge to put the tap on, when the binding names one. */
  readonly bridge?: string;
}

const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;
/** Linux interface names: 1-15 characters, no `/`, whitespace or `:` (IFNAMSIZ, dev_valid_name). */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * The NIC a port binding describes: `macAddress`, `binding.tap` (else Nova's `tap` + the first 11
 * characters of the port id), and `binding.bridge` when `binding.vifType` is `bridge`.
 * @throws ValidationError naming `macAddress`, `binding.vifType`, `binding.tap` or `binding.bridge`
 */
export function nicOfPort(port: PortBinding): NicDevice {
  const mac = (port.macAddress ?? '').toLowerCase();
  const vifType = port.binding?.vifType ?? 'ethernet';
  const tap = port.binding?.tap ?? `tap${port.portId.slice(0, 11)}`;
  const bridge = port.binding?.bridge;
  const issues = [
    ...(MAC.test(mac)
      ? []
      : [{ path: 'macAddress', rule: 'pattern', message: 'a MAC address such as fa:16:3e:00:00:01' }]),
    ...(vifType === 'ethernet' || vifType === 'bridge'
      ? []
      : [{ path: 'binding.vifType', rule: 'enum', message: `ethernet or bridge (got ${vifType})` }]),
    ...(IFNAME.test(tap)
      ? []
      : [
          {
            path: 'binding.tap',
            rule: 'pattern',
            message: 'an interface name of 1-15 letters, digits, _ . -',
          },
        ]),
    ...(vifType !== 'bridge' || (bridge !== undefined && IFNAME.test(bridge))
      ? []
      : [
          {
            path: 'binding.bridge',
            rule: 'pattern',
            message: 'a bridge name of 1-15 letters, digits, _ . -',
          },
        ]),
  ];
  if (issues.length) throw new ValidationError(issues);
  return { mac, tap, ...(vifType === 'bridge' ? { bridge: bridge as string } : {}) };
}

/** libvirt `<interface>` XML of a virtio NIC, built with an escaping XML builder. */
export function interfaceDeviceXml(nic: NicDevice): string {
  return appendInterface(create(), nic).end({ headless: true });
}

/** Appends the `<interface>` element of `nic` to `parent` (a domain's `<devices>`, or a fragment). */
export function appendInterface(parent: XMLBuilder, nic: NicDevice): XMLBuilder {
  const i = parent.ele('interface', { type: nic.bridge ? 'bridge' : 'ethernet' });
  i.ele('mac', { address: nic.mac });
  if (nic.bridge) i.ele('source', { bridge: nic.bridge });
  i.ele('target', { dev: nic.tap, ...(nic.bridge ? {} : { managed: 'yes' }) });
  i.ele('model', { type: 'virtio' });
  return i;
}

/** The NICs of a domain XML: MAC address, host device and (in the live definition) alias of each. */
export function domainInterfaces(xml: string): { mac: string; tap?: string; alias?: string }[] {
  const root = create(xml).root().node as unknown as {
    getElementsByTagName(name: string): ArrayLike<{
      getElementsByTagName(name: string): ArrayLike<{ getAttribute(n: string): string | null }>;
    }>;
  };
  const out: { mac: string; tap?: string; alias?: string }[] = [];
  const nics = root.getElementsByTagName('interface');
  for (let i = 0; i < nics.length; i++) {
    const nic = nics[i];
    const mac = nic?.getElementsByTagName('mac')[0]?.getAttribute('address')?.toLowerCase();
    if (!mac) continue;
    const tap = nic?.getElementsByTagName('target')[0]?.getAttribute('dev') ?? undefined;
    const alias = nic?.getElementsByTagName('alias')[0]?.getAttribute('name') ?? undefined;
    out.push({ mac, ...(tap ? { tap } : {}), ...(alias ? { alias } : {}) });
  }
  return out;
}
