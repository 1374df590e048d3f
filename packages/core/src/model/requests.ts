import { z } from 'zod';
import { schedulerHintsSchema } from './instance.js';
import { displayNameSchema, idSchema, metadataSchema, plainTextSchema } from './names.js';

/** A create request, validated at the engine's boundary. */
export const createInstanceRequestSchema = z.object({
  /** Display name; with `count > 1` instances are named `name-1`, `name-2`, ... */
  name: displayNameSchema,
  projectId: idSchema,
  userId: idSchema,
  flavorId: idSchema,
  imageId: idSchema,
  /** How many instances to create together (all-or-nothing placement). */
  count: z.int().min(1).max(1000).default(1),
  availabilityZone: displayNameSchema.optional(),
  metadata: metadataSchema.default({}),
  hints: schedulerHintsSchema.default({}),
  /** Networks to attach through the NetworkAdapter, if one is configured. */
  networks: z.array(z.object({ networkId: idSchema.optional(), portId: idSchema.optional() })).default([]),
  /** Volumes to attach through the VolumeAdapter, if one is configured. */
  volumes: z.array(z.object({ volumeId: idSchema, device: plainTextSchema(64).optional() })).default([]),
  requestId: displayNameSchema.optional(),
});
/** A create request (defaults applied). */
export type CreateInstanceRequest = z.output<typeof createInstanceRequestSchema>;
/** A create request as callers write it. */
export type CreateInstanceInput = z.input<typeof createInstanceRequestSchema>;

/** How to reboot: `soft` asks the guest to restart (ACPI), `hard` resets it. Nothing else is accepted. */
export const rebootKindSchema = z.enum(['soft', 'hard']);
/** How to reboot: `soft` (graceful) or `hard` (reset). */
export type RebootKind = z.output<typeof rebootKindSchema>;

/** A rebuild request: new image (and optionally name and metadata). */
export const rebuildRequestSchema = z.object({
  imageId: idSchema,
  name: displayNameSchema.optional(),
  metadata: metadataSchema.optional(),
});
/** A rebuild request. */
export type RebuildRequest = z.output<typeof rebuildRequestSchema>;
