import type { ImageProperties } from '@nova-lfs/core';
import { z } from 'zod';

/**
 * Image attributes the server sets: a create or patch naming one is refused with 403 (Glance's
 * `Attribute '<name>' is read-only.`). `owner` is read-only for callers other than admins.
 */
export const readOnlyAttributes: ReadonlySet<string> = new Set([
  'status',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'size',
  'virtual_size',
  'created_at',
  'updated_at',
  'self',
  'file',
  'schema',
  'direct_url',
  'locations',
  'stores',
]);

/** Attributes Glance reserves (`Attribute '<name>' is reserved.`, 403). */
export const reservedAttributes: ReadonlySet<string> = new Set(['deleted', 'deleted_at', 'location', 'id_']);

/** Base attributes of the image object (never extra properties). */
export const baseAttributes: ReadonlySet<string> = new Set([
  ...readOnlyAttributes,
  ...reservedAttributes,
  'id',
  'name',
  'owner',
  'visibility',
  'protected',
  'os_hidden',
  'min_disk',
  'min_ram',
  'disk_format',
  'container_format',
  'tags',
]);

/** Glance's names of the properties the engine reads, and the engine's names for them. */
const glanceToEngine: Readonly<Record<string, string>> = {
  architecture: 'architecture',
  hypervisor_type: 'hypervisorType',
  kernel_id: 'kernelImageId',
  ramdisk_id: 'ramdiskImageId',
  os_command_line: 'kernelCmdline',
  instance_uuid: 'sourceInstance',
};
const engineToGlance: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(glanceToEngine).map(([g, e]) => [e, g]),
);

/** At most this many extra properties per image (Glance's `image_property_quota` default). */
export const maxProperties = 128;
/** At most this many tags per image (Glance's `image_tag_quota` default). */
export const maxTags = 128;

const noControl = (s: string) => !/[\p{Cc}\p{Cs}]/u.test(s);
const forbiddenKeys = new Set(['__proto__', 'constructor', 'prototype']);

/** An extra property name: 1-255 letters, digits and `_.:-` (what Glance's well-known names use). */
export const propertyKeySchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'must be 1-255 letters, digits and _.:-')
  .refine((k) => !forbiddenKeys.has(k), 'is a reserved name');

/** An extra property value: a string of at most 4096 characters without control characters. */
export const propertyValueSchema = z
  .string({ error: 'must be a string' })
  .max(4096)
  .refine(noControl, 'must not contain control characters');

/** A tag: 1-255 characters without control characters. */
export const tagSchema = z.string().min(1).max(255).refine(noControl, 'must not contain control characters');

/** An image name (Glance allows none): at most 255 characters without control characters. */
export const imageNameSchema = z.string().max(255).refine(noControl, 'must not contain control characters');

/** The engine's properties for an image's Glance extra properties (well-known names translated). */
export function toEngineProperties(extra: Readonly<Record<string, string>>): ImageProperties {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(extra)) out[glanceToEngine[key] ?? key] = value;
  return out as ImageProperties;
}

/**
 * The Glance extra properties of an image the engine knows (well-known names translated; a
 * property whose name is a base attribute is not shown).
 */
export function fromEngineProperties(
  props: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined) continue;
    const name = engineToGlance[key] ?? key;
    if (baseAttributes.has(name) || forbiddenKeys.has(name)) continue;
    out[name] = value;
  }
  if (props.sourceInstance !== undefined && out.image_type === undefined) out.image_type = 'snapshot';
  return out;
}
