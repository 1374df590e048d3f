import { atLeast, type Microversion } from '../microversion.js';
import type { ApiFlavor } from './flavor-attrs.js';

function links(base: string, id: string) {
  const root = base.replace(/\/v2(\.1)?\/?$/, '');
  return [
    { rel: 'self', href: `${base}/flavors/${encodeURIComponent(id)}` },
    { rel: 'bookmark', href: `${root}/flavors/${encodeURIComponent(id)}` },
  ];
}

/** A flavor in a non-detailed listing: id, name, links (and description at >= 2.55). */
export function flavorSummary(f: ApiFlavor, v: Microversion, base: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: f.flavor.id,
    name: f.flavor.name,
    links: links(base, f.flavor.id),
  };
  if (atLeast(v, 55)) out.description = f.description;
  return out;
}

/**
 * A flavor as Nova shows it at `v`: `swap` is `""` when there is none (below 2.75),
 * `description` from 2.55, `extra_specs` from 2.61.
 */
export function flavorView(f: ApiFlavor, v: Microversion, base: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: f.flavor.id,
    name: f.flavor.name,
    ram: f.flavor.ramMb,
    disk: f.flavor.diskGb,
    swap: f.swap === 0 ? '' : f.swap,
    'OS-FLV-EXT-DATA:ephemeral': f.ephemeral,
    'OS-FLV-DISABLED:disabled': f.disabled,
    vcpus: f.flavor.vcpus,
    'os-flavor-access:is_public': f.isPublic,
    rxtx_factor: f.rxtxFactor,
    links: links(base, f.flavor.id),
  };
  if (atLeast(v, 55)) out.description = f.description;
  if (atLeast(v, 61)) out.extra_specs = { ...f.flavor.extraSpecs };
  return out;
}
