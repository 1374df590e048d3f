import { ApiFault } from '../http/api-fault.js';
import type { AuthContext } from '../http/auth-context.js';
import type { GlanceImage } from './image-catalog.js';
import { propertyKeySchema } from './image-properties.js';
import { imageStatuses, imageVisibilities } from './image-tables.js';

/** A query value as Fastify parses it (a repeated key is an array). */
export type QueryValue = string | string[];

/** Glance's default and largest page (`limit_param_default`, `api_limit_max`). */
export const defaultPageSize = 25;
export const maxPageSize = 1000;

const sortKeys = {
  name: (i: GlanceImage) => i.name,
  status: (i: GlanceImage) => i.status,
  container_format: (i: GlanceImage) => i.containerFormat,
  disk_format: (i: GlanceImage) => i.diskFormat,
  size: (i: GlanceImage) => i.size,
  id: (i: GlanceImage) => i.id,
  created_at: (i: GlanceImage) => i.createdAt,
  updated_at: (i: GlanceImage) => i.updatedAt,
  visibility: (i: GlanceImage) => i.visibility,
  owner: (i: GlanceImage) => i.owner,
  min_disk: (i: GlanceImage) => i.minDisk,
  min_ram: (i: GlanceImage) => i.minRam,
} as const satisfies Record<string, (i: GlanceImage) => string | number | null>;
type SortKey = keyof typeof sortKeys;

const listKeys = new Set([
  'limit',
  'marker',
  'name',
  'visibility',
  'status',
  'owner',
  'tag',
  'sort_key',
  'sort_dir',
  'sort',
  'disk_format',
  'container_format',
  'protected',
  'os_hidden',
  'checksum',
  'os_hash_value',
  'size_min',
  'size_max',
  'member_status',
]);

/** Whether the caller may see the image at all (Glance: admin, owner, public or community). */
export function canSee(image: GlanceImage, auth: AuthContext, admin: boolean): boolean {
  if (admin) return true;
  if (image.owner !== null && image.owner === auth.projectId) return true;
  return image.visibility === 'public' || image.visibility === 'community';
}

function bad(message: string, field: string): ApiFault {
  return new ApiFault(400, message, { field });
}

function one(query: Readonly<Record<string, QueryValue>>, key: string): string | undefined {
  const v = query[key];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) {
    if (v.length !== 1) throw bad(`Only one value of ${key} is allowed`, `query.${key}`);
    return v[0];
  }
  return v;
}

function many(query: Readonly<Record<string, QueryValue>>, key: string): string[] {
  const v = query[key];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function bool(value: string, field: string): boolean {
  const v = value.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw bad(`Invalid value for ${field}: must be true or false`, field);
}

function int(value: string, field: string): number {
  if (!/^\d{1,15}$/.test(value))
    throw bad(`Invalid value for ${field}: must be a non-negative integer`, field);
  return Number(value);
}

/** The page of a list and the marker of the next one (undefined on the last page). */
export interface ImagePage {
  readonly images: GlanceImage[];
  readonly nextMarker?: string;
  readonly limit: number;
}

/**
 * Glance's `GET /v2/images` over every image: what the caller may list (an admin every image;
 * others their project's, public ones, and community ones when asking for `visibility=community`
 * or `all`), hidden images only on `os_hidden=true`, the filters (exact `name`, `status`, `owner`,
 * formats, every `tag`, `protected`, checksums, sizes, and other keys as extra properties),
 * sorted (`sort_key`/`sort_dir` or `sort=k:dir,...`, default `created_at` desc, then `id`) and
 * cut after `marker` to `limit`.
 * @throws ApiFault 400 naming the query field: bad values, an unknown or invisible marker
 */
export function listImages(
  all: readonly GlanceImage[],
  query: Readonly<Record<string, QueryValue>>,
  auth: AuthContext,
  admin: boolean,
): ImagePage {
  const visibility = one(query, 'visibility');
  if (
    visibility !== undefined &&
    visibility !== 'all' &&
    !(imageVisibilities as readonly string[]).includes(visibility)
  )
    throw bad(`Invalid visibility value: ${visibility}`, 'query.visibility');
  const status = one(query, 'status');
  if (status !== undefined && !(imageStatuses as readonly string[]).includes(status))
    throw bad(`Invalid status value: ${status}`, 'query.status');
  const limitText = one(query, 'limit');
  const limit = Math.min(
    limitText === undefined ? defaultPageSize : int(limitText, 'query.limit'),
    maxPageSize,
  );
  const hidden = one(query, 'os_hidden');
  const wantHidden = hidden === undefined ? false : bool(hidden, 'query.os_hidden');
  const prot = one(query, 'protected');
  const wantProtected = prot === undefined ? undefined : bool(prot, 'query.protected');
  const sizeMin = one(query, 'size_min');
  const sizeMax = one(query, 'size_max');
  const min = sizeMin === undefined ? undefined : int(sizeMin, 'query.size_min');
  const max = sizeMax === undefined ? undefined : int(sizeMax, 'query.size_max');
  const exact: [string | undefined, (i: GlanceImage) => string | null][] = [
    [one(query, 'name'), (i) => i.name],
    [status, (i) => i.status],
    [one(query, 'owner'), (i) => i.owner],
    [one(query, 'disk_format'), (i) => i.diskFormat],
    [one(query, 'container_format'), (i) => i.containerFormat],
    [one(query, 'checksum'), (i) => i.checksum],
    [one(query, 'os_hash_value'), (i) => i.sha256],
  ];
  const tags = many(query, 'tag');
  const propertyFilters: [string, string][] = [];
  for (const key of Object.keys(query)) {
    if (listKeys.has(key)) continue;
    if (!propertyKeySchema.safeParse(key).success) throw bad(`Invalid filter ${key}`, `query.${key}`);
    propertyFilters.push([key, one(query, key)!]);
  }
  const order = sortOrder(query);
  const compare = (a: GlanceImage, b: GlanceImage): number => {
    for (const [key, dir] of order) {
      const c = compareValues(sortKeys[key](a), sortKeys[key](b));
      if (c !== 0) return dir === 'asc' ? c : -c;
    }
    return 0;
  };

  const listable = (i: GlanceImage): boolean => {
    if (admin) return visibility === undefined || visibility === 'all' || i.visibility === visibility;
    const own = i.owner !== null && i.owner === auth.projectId;
    switch (visibility) {
      case undefined:
        return own || i.visibility === 'public';
      case 'all':
        return canSee(i, auth, admin);
      case 'public':
      case 'community':
        return i.visibility === visibility;
      default:
        return own && i.visibility === visibility;
    }
  };
  let rows = all.filter(
    (i) =>
      listable(i) &&
      i.osHidden === wantHidden &&
      exact.every(([want, get]) => want === undefined || get(i) === want) &&
      tags.every((t) => i.tags.includes(t)) &&
      (wantProtected === undefined || i.protected === wantProtected) &&
      (min === undefined || (i.size ?? -1) >= min) &&
      (max === undefined || (i.size !== null && i.size <= max)) &&
      propertyFilters.every(([k, v]) => i.properties[k] === v),
  );
  rows.sort(compare);
  const marker = one(query, 'marker');
  if (marker !== undefined) {
    const at = all.find((i) => i.id === marker && canSee(i, auth, admin));
    if (!at) throw bad(`Invalid marker. Image ${marker} could not be found.`, 'query.marker');
    rows = rows.filter((i) => compare(i, at) > 0);
  }
  const images = rows.slice(0, limit);
  const last = images[images.length - 1];
  return rows.length > limit && last ? { images, nextMarker: last.id, limit } : { images, limit };
}

function sortOrder(query: Readonly<Record<string, QueryValue>>): [SortKey, 'asc' | 'desc'][] {
  const out: [SortKey, 'asc' | 'desc'][] = [];
  const check = (key: string, field: string): SortKey => {
    if (!Object.hasOwn(sortKeys, key)) throw bad(`Invalid sort key: ${key}`, field);
    return key as SortKey;
  };
  const dirOf = (d: string | undefined, field: string): 'asc' | 'desc' => {
    if (d === undefined) return 'desc';
    if (d !== 'asc' && d !== 'desc') throw bad(`Invalid sort direction: ${d}`, field);
    return d;
  };
  const sort = one(query, 'sort');
  if (sort !== undefined) {
    if (query.sort_key !== undefined || query.sort_dir !== undefined)
      throw bad('The sort parameter cannot be combined with sort_key or sort_dir', 'query.sort');
    for (const part of sort.split(',')) {
      const [key, dir, extra] = part.trim().split(':');
      if (extra !== undefined) throw bad(`Invalid sort: ${part}`, 'query.sort');
      out.push([check(key ?? '', 'query.sort'), dirOf(dir, 'query.sort')]);
    }
  } else {
    const keys = many(query, 'sort_key');
    const dirs = many(query, 'sort_dir');
    if (dirs.length > 1 && dirs.length !== keys.length)
      throw bad('The number of sort_dir values must match the sort_key values', 'query.sort_dir');
    keys.forEach((k, i) => {
      out.push([check(k, 'query.sort_key'), dirOf(dirs.length > 1 ? dirs[i] : dirs[0], 'query.sort_dir')]);
    });
    if (keys.length === 0 && dirs.length > 0) out.push(['created_at', dirOf(dirs[0], 'query.sort_dir')]);
  }
  const dir = out[0]?.[1] ?? 'desc';
  if (!out.some(([k]) => k === 'created_at')) out.push(['created_at', dir]);
  if (!out.some(([k]) => k === 'id')) out.push(['id', dir]);
  return out;
}

function compareValues(a: string | number | null, b: string | number | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
}

/** The query string of the request's filters without `marker`, as Glance echoes in `first`/`next`. */
export function echoQuery(query: Readonly<Record<string, QueryValue>>, marker?: string): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (key === 'marker') continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, v);
  }
  if (marker !== undefined) params.set('marker', marker);
  const text = params.toString();
  return text ? `?${text}` : '';
}
