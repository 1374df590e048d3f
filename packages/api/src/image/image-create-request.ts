import { containerFormats, diskFormats } from '@nova-lfs/core';
import { z } from 'zod';
import { ApiFault } from '../http/api-fault.js';
import type { AuthContext } from '../http/auth-context.js';
import {
  baseAttributes,
  imageNameSchema,
  maxProperties,
  maxTags,
  propertyKeySchema,
  propertyValueSchema,
  readOnlyAttributes,
  reservedAttributes,
  tagSchema,
} from './image-properties.js';
import { type ImageVisibility, imageVisibilities } from './image-tables.js';

const sizeInt = z
  .int()
  .min(0)
  .max(2 ** 31 - 1);

/** The base attributes `POST /v2/images` accepts. */
const createSchema = z.object({
  id: z.uuid().optional(),
  name: imageNameSchema.nullable().optional(),
  disk_format: z.enum(diskFormats).nullable().optional(),
  container_format: z.enum(containerFormats).nullable().optional(),
  visibility: z.enum(imageVisibilities).optional(),
  protected: z.boolean().optional(),
  os_hidden: z.boolean().optional(),
  min_disk: sizeInt.optional(),
  min_ram: sizeInt.optional(),
  tags: z.array(tagSchema).max(maxTags).optional(),
  owner: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'must be a project id')
    .nullable()
    .optional(),
});

/** A validated image creation. */
export interface ImageCreation {
  readonly id: string | undefined;
  readonly name: string | null;
  readonly diskFormat: string | null;
  readonly containerFormat: string | null;
  readonly visibility: ImageVisibility;
  readonly protected: boolean;
  readonly osHidden: boolean;
  readonly minDisk: number;
  readonly minRam: number;
  readonly tags: string[];
  readonly owner: string | null;
  readonly properties: Record<string, string>;
}

/**
 * Reads a `POST /v2/images` body: base attributes and extra string properties. `visibility`
 * defaults to `shared` (Glance's default), the owner to the caller's project; only an admin may
 * name another owner.
 * @throws ApiFault 403 for a read-only or reserved attribute, or another project as owner; 400
 *   naming the field (`body.name`) for a bad value
 */
export function parseCreation(
  body: Readonly<Record<string, unknown>>,
  auth: AuthContext,
  admin: boolean,
): ImageCreation {
  for (const key of Object.keys(body)) {
    if (readOnlyAttributes.has(key))
      throw new ApiFault(403, `Attribute '${key}' is read-only.`, { field: `body.${key}` });
    if (reservedAttributes.has(key))
      throw new ApiFault(403, `Attribute '${key}' is reserved.`, { field: `body.${key}` });
  }
  const base: Record<string, unknown> = {};
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(body)) {
    if (baseAttributes.has(key)) {
      base[key] = value;
      continue;
    }
    const k = propertyKeySchema.safeParse(key);
    if (!k.success)
      throw new ApiFault(400, `Invalid property name: ${k.error.issues[0]?.message ?? 'invalid'}`, {
        field: 'body',
      });
    const v = propertyValueSchema.safeParse(value);
    if (!v.success)
      throw new ApiFault(400, `Invalid value for body.${key}: ${v.error.issues[0]?.message ?? 'invalid'}`, {
        field: `body.${key}`,
      });
    properties[key] = v.data;
  }
  if (Object.keys(properties).length > maxProperties)
    throw new ApiFault(413, `Maximum number of image properties (${maxProperties}) exceeded.`, {
      field: 'body',
    });
  const r = createSchema.safeParse(base);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = `body${issue?.path.length ? `.${issue.path.join('.')}` : ''}`;
    throw new ApiFault(400, `Invalid input for field/attribute ${field}: ${issue?.message ?? 'invalid'}`, {
      field,
    });
  }
  const b = r.data;
  const owner = b.owner === undefined ? auth.projectId : b.owner;
  if (!admin && owner !== auth.projectId)
    throw new ApiFault(403, `You are not permitted to create images owned by '${owner}'.`, {
      field: 'body.owner',
    });
  return {
    id: b.id,
    name: b.name ?? null,
    diskFormat: b.disk_format ?? null,
    containerFormat: b.container_format ?? null,
    visibility: b.visibility ?? 'shared',
    protected: b.protected ?? false,
    osHidden: b.os_hidden ?? false,
    minDisk: b.min_disk ?? 0,
    minRam: b.min_ram ?? 0,
    tags: [...new Set(b.tags ?? [])],
    owner,
    properties,
  };
}
