import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiFault } from '../http/api-fault.js';

/** A compute API microversion `2.N`. */
export interface Microversion {
  readonly major: number;
  readonly minor: number;
}

/** The oldest microversion served. */
export const minMicroversion: Microversion = Object.freeze({ major: 2, minor: 1 });
/** The newest microversion served; every format change up to it is implemented. */
export const maxMicroversion: Microversion = Object.freeze({ major: 2, minor: 73 });

/** `"2.47"`. */
export function formatMicroversion(v: Microversion): string {
  return `${v.major}.${v.minor}`;
}

/** Whether `v` is at least `2.minor`. */
export function atLeast(v: Microversion, minor: number): boolean {
  return v.major > 2 || (v.major === 2 && v.minor >= minor);
}

/**
 * The microversion a request asks for: `OpenStack-API-Version: compute X` wins over
 * `X-OpenStack-Nova-API-Version: X`; none means 2.1; `latest` means the newest served.
 * @throws ApiFault 400 for a malformed version, 406 for one out of range (Nova's answers)
 */
export function negotiateMicroversion(headers: FastifyRequest['headers']): Microversion {
  const asked = requested(headers);
  if (asked === undefined) return minMicroversion;
  if (asked === 'latest') return maxMicroversion;
  const m = /^(\d+)\.(\d+)$/.exec(asked);
  if (!m)
    throw new ApiFault(400, `Invalid format for API version request ${asked}`, {
      field: 'OpenStack-API-Version',
    });
  const v = { major: Number(m[1]), minor: Number(m[2]) };
  if (compare(v, minMicroversion) < 0 || compare(v, maxMicroversion) > 0)
    throw new ApiFault(
      406,
      `Version ${asked} is not supported by the API. Minimum is ${formatMicroversion(minMicroversion)} and maximum is ${formatMicroversion(maxMicroversion)}.`,
      { faultName: 'computeFault', headers: versionHeaders(asked) },
    );
  return v;
}

/** Sets the version headers of a compute answer (both spellings, and `Vary`). */
export function sendMicroversion(reply: FastifyReply, v: Microversion): void {
  reply.headers(versionHeaders(formatMicroversion(v)));
}

function versionHeaders(text: string): Record<string, string> {
  return {
    'OpenStack-API-Version': `compute ${text}`,
    'X-OpenStack-Nova-API-Version': text,
    Vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version',
  };
}

function requested(headers: FastifyRequest['headers']): string | undefined {
  const modern = first(headers['openstack-api-version']);
  if (modern !== undefined) {
    for (const part of modern.split(',')) {
      const [service, version] = part.trim().split(/\s+/, 2);
      if (service?.toLowerCase() === 'compute' && version) return version.toLowerCase();
    }
  }
  const legacy = first(headers['x-openstack-nova-api-version']);
  return legacy === undefined || legacy.trim() === '' ? undefined : legacy.trim().toLowerCase();
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function compare(a: Microversion, b: Microversion): number {
  return a.major - b.major || a.minor - b.minor;
}
