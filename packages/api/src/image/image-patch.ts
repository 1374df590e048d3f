import { containerFormats, diskFormats } from '@nova-lfs/core';
import { z } from 'zod';
import { ApiFault } from '../http/api-fault.js';
import type { GlanceImage } from './image-catalog.js';
import {
  imageNameSchema,
  maxProperties,
  maxTags,
  propertyKeySchema,
  propertyValueSchema,
  readOnlyAttributes,
  reservedAttributes,
  tagSchema,
} from './image-properties.js';
import { imageVisibilities } from './image-tables.js';

/** One operation of Glance's `application/openstack-images-v2.1-json-patch` body. */
export const patchOperationSchema = z
  .object({
    op: z.enum(['add', 'replace', 'remove']),
    path: z.string().min(1).max(1024),
    value: z.unknown().optional(),
  })
  .strict();

/** A PATCH body: at most 1000 operations. */
export const patchBodySchema = z.array(patchOperationSchema).max(1000);

/** The fields of an image a PATCH may change. */
export type ImageChanges = Pick<
  GlanceImage,
  | 'name'
  | 'visibility'
  | 'protected'
  | 'osHidden'
  | 'owner'
  | 'minDisk'
  | 'minRam'
  | 'diskFormat'
  | 'containerFormat'
  | 'tags'
  | 'properties'
>;

const sizeInt = z
  .int()
  .min(0)
  .max(2 ** 31 - 1);
const ownerSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'must be a project id')
  .nullable();

function parse<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const message = r.error.issues[0]?.message ?? 'invalid';
  throw new ApiFault(400, `Invalid value for ${field}: ${message}`, { field });
}

function forbidden(message: string, field: string): ApiFault {
  return new ApiFault(403, message, { field });
}

/** JSON pointer segments (`~1` is `/`, `~0` is `~`). */
function pointer(path: string, field: string): string[] {
  if (!path.startsWith('/'))
    throw new ApiFault(400, `Invalid JSON pointer ${field}: must start with /`, { field });
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * Applies JSON-patch operations (Glance's v2.1 patch media type) to an image's changeable fields:
 * `/name`, `/visibility`, `/protected`, `/os_hidden`, `/min_disk`, `/min_ram`, `/tags` (whole,
 * `/tags/<index>` or `/tags/-`), `/disk_format` and `/container_format` (queued images only),
 * `/owner` (admins only) and extra properties `/<key>`. Nothing is written here.
 * @throws ApiFault 400 naming the operation (`body.0.value`) for a bad value or path; 403 for a
 *   read-only, reserved or irremovable attribute; 409 replacing or removing a missing property
 */
export function applyPatch(
  image: GlanceImage,
  ops: readonly z.output<typeof patchOperationSchema>[],
  options: { readonly admin: boolean },
): ImageChanges {
  let next: ImageChanges = {
    name: image.name,
    visibility: image.visibility,
    protected: image.protected,
    osHidden: image.osHidden,
    owner: image.owner,
    minDisk: image.minDisk,
    minRam: image.minRam,
    diskFormat: image.diskFormat,
    containerFormat: image.containerFormat,
    tags: [...image.tags],
    properties: { ...image.properties },
  };
  ops.forEach((op, i) => {
    const field = `body.${i}.value`;
    const pathField = `body.${i}.path`;
    const segments = pointer(op.path, pathField);
    const [attr, ...rest] = segments as [string, ...string[]];
    const remove = op.op === 'remove';
    if (!remove && !('value' in op)) throw new ApiFault(400, `Operation ${i} needs a value`, { field });
    if (readOnlyAttributes.has(attr) || attr === 'id' || (attr === 'owner' && !options.admin))
      throw forbidden(`Attribute '${attr}' is read-only.`, pathField);
    if (reservedAttributes.has(attr)) throw forbidden(`Attribute '${attr}' is reserved.`, pathField);
    if (attr !== 'tags' && rest.length > 0)
      throw new ApiFault(400, `Invalid path ${op.path}`, { field: pathField });
    const irremovable = () => forbidden(`Attribute '${attr}' cannot be removed.`, pathField);
    switch (attr) {
      case 'name':
        if (remove) throw irremovable();
        next = { ...next, name: parse(imageNameSchema.nullable(), op.value, field) };
        return;
      case 'visibility':
        if (remove) throw irremovable();
        next = { ...next, visibility: parse(z.enum(imageVisibilities), op.value, field) };
        return;
      case 'protected':
      case 'os_hidden': {
        if (remove) throw irremovable();
        const b = parse(z.boolean(), op.value, field);
        next = attr === 'protected' ? { ...next, protected: b } : { ...next, osHidden: b };
        return;
      }
      case 'min_disk':
      case 'min_ram': {
        if (remove) throw irremovable();
        const n = parse(sizeInt, op.value, field);
        next = attr === 'min_disk' ? { ...next, minDisk: n } : { ...next, minRam: n };
        return;
      }
      case 'disk_format':
      case 'container_format': {
        if (image.status !== 'queued')
          throw forbidden(`Attribute ${attr} can be only replaced for a queued image.`, pathField);
        const v = remove
          ? null
          : parse(
              z.enum(attr === 'disk_format' ? diskFormats : containerFormats).nullable(),
              op.value,
              field,
            );
        next = attr === 'disk_format' ? { ...next, diskFormat: v } : { ...next, containerFormat: v };
        return;
      }
      case 'owner':
        next = { ...next, owner: remove ? null : parse(ownerSchema, op.value, field) };
        return;
      case 'tags':
        next = { ...next, tags: patchTags(next.tags, op.op, rest, op.value, field, pathField) };
        return;
      default: {
        const key = parse(propertyKeySchema, attr, pathField);
        const has = Object.hasOwn(next.properties, key);
        if ((op.op === 'replace' || remove) && !has)
          throw new ApiFault(409, `Property ${key} does not exist.`, { field: pathField });
        const props = { ...next.properties };
        if (remove) delete props[key];
        else props[key] = parse(propertyValueSchema, op.value, field);
        if (Object.keys(props).length > maxProperties)
          throw new ApiFault(413, `Maximum number of image properties (${maxProperties}) exceeded.`, {
            field,
          });
        next = { ...next, properties: props };
      }
    }
  });
  return next;
}

function patchTags(
  tags: readonly string[],
  op: 'add' | 'replace' | 'remove',
  rest: readonly string[],
  value: unknown,
  field: string,
  pathField: string,
): string[] {
  let out = [...tags];
  if (rest.length === 0) {
    if (op === 'remove') return [];
    out = [...new Set(parse(z.array(tagSchema).max(maxTags * 8), value, field))];
  } else {
    if (rest.length > 1) throw new ApiFault(400, 'Invalid tags path', { field: pathField });
    const at =
      rest[0] === '-' && op === 'add' ? out.length : /^\d{1,4}$/.test(rest[0]!) ? Number(rest[0]) : -1;
    const bound = op === 'add' ? out.length : out.length - 1;
    if (at < 0 || at > bound) throw new ApiFault(400, `No tag at index ${rest[0]}`, { field: pathField });
    if (op === 'remove') out.splice(at, 1);
    else {
      const tag = parse(tagSchema, value, field);
      if (op === 'replace') out.splice(at, 1);
      if (!out.includes(tag)) out.splice(Math.min(at, out.length), 0, tag);
    }
  }
  if (out.length > maxTags)
    throw new ApiFault(413, `Maximum number of tags (${maxTags}) exceeded.`, { field });
  return out;
}
