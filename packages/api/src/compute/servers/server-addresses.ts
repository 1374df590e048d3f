import type { Instance } from '@nova-lfs/core';

/** One address of a server's `addresses` (Nova's 2.1 format with the extended IP attributes). */
export interface ServerAddress {
  readonly addr: string;
  readonly version: 4 | 6;
  readonly 'OS-EXT-IPS:type': 'fixed';
  readonly 'OS-EXT-IPS-MAC:mac_addr': string | null;
}

/**
 * Nova's `addresses` of a server from the ports it records: `{ "<network>": [address, ...] }`,
 * in the order the ports were bound. The key is the network's id (the API does not know the
 * network adapter's names; Nova uses the network's label). Every address is `fixed` (there are
 * no floating IPs).
 */
export function addressesOf(instance: Instance): Record<string, ServerAddress[]> {
  const out: Record<string, ServerAddress[]> = {};
  for (const port of instance.ports ?? []) {
    const list = out[port.networkId] ?? [];
    out[port.networkId] = list;
    for (const addr of port.ipAddresses ?? [])
      list.push({
        addr,
        version: addr.includes(':') ? 6 : 4,
        'OS-EXT-IPS:type': 'fixed',
        'OS-EXT-IPS-MAC:mac_addr': port.macAddress ?? null,
      });
  }
  return out;
}
