/**
 * IPv4 arithmetic for the adapter's IPAM: strict dotted quads (no leading zeros, no shorthand),
 * CIDR subnets and the addresses a subnet hands out.
 */

const QUAD = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;
const CIDR = /^([0-9.]{7,15})\/([1-9][0-9]?)$/;

/** Smallest and largest prefix length a configured subnet may have. */
export const MIN_PREFIX = 8;
export const MAX_PREFIX = 30;

/** An IPv4 address as an unsigned 32-bit number, or undefined when `text` is not a strict dotted quad. */
export function parseIpv4(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = QUAD.exec(text);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    n = n * 256 + octet;
  }
  return n;
}

/** The dotted quad of an unsigned 32-bit number. */
export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** A parsed IPv4 subnet. */
export interface Subnet {
  /** The network address. */
  readonly network: number;
  readonly prefix: number;
  readonly broadcast: number;
  /** The first host address, reserved for the gateway. */
  readonly gateway: number;
  /** First and last address handed out to ports (the gateway, network and broadcast excluded). */
  readonly first: number;
  readonly last: number;
}

/** Why a CIDR was refused, for the validation issue. */
export type CidrProblem = { rule: string; message: string };

/**
 * Parses `a.b.c.d/p` with `p` from {@link MIN_PREFIX} to {@link MAX_PREFIX}; the address must be
 * the network address (no host bits set).
 */
export function parseCidr(text: unknown): Subnet | CidrProblem {
  const m = typeof text === 'string' ? CIDR.exec(text) : null;
  const address = m ? parseIpv4(m[1]) : undefined;
  if (!m || address === undefined) return { rule: 'format', message: 'an IPv4 CIDR such as 10.0.0.0/24' };
  const prefix = Number(m[2]);
  if (prefix < MIN_PREFIX || prefix > MAX_PREFIX)
    return { rule: 'range', message: `prefix length from ${MIN_PREFIX} to ${MAX_PREFIX}` };
  const size = 2 ** (32 - prefix);
  if (address % size !== 0)
    return {
      rule: 'network-address',
      message: `host bits set: the network address is ${formatIpv4(address - (address % size))}/${prefix}`,
    };
  const broadcast = address + size - 1;
  return {
    network: address,
    prefix,
    broadcast,
    gateway: address + 1,
    first: address + 2,
    last: broadcast - 1,
  };
}

/** Whether `n` is an address the subnet hands out to a port. */
export function assignable(subnet: Subnet, n: number): boolean {
  return n >= subnet.first && n <= subnet.last;
}
