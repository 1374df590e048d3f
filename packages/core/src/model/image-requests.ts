import { z } from 'zod';
import { containerFormats, diskFormats, imagePropertiesSchema, sha256Schema } from './image.js';
import { displayNameSchema, idSchema } from './names.js';

/**
 * Where an image's bytes come from (validated shape of the image service's `ImageSource`): a
 * local file (`path`: 1-4096 characters, no NUL), bytes in memory, or a function opening a stream.
 */
export const imageSourceSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('file'),
    path: z
      .string()
      .min(1)
      .max(4096)
      .regex(/^[^\0]*$/, 'must not contain NUL'),
  }),
  z.object({ kind: z.literal('bytes'), bytes: z.instanceof(Uint8Array) }),
  z.object({
    kind: z.literal('stream'),
    open: z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', 'must be a function'),
  }),
]);

/** Metadata of an image import, validated at the image service's boundary. */
export const imageImportSchema = z.object({
  /** Default: a new UUID. */
  id: idSchema.optional(),
  name: displayNameSchema,
  diskFormat: z.enum(diskFormats),
  containerFormat: z.enum(containerFormats).optional(),
  /** Expected sha256 of the bytes (verified). */
  sha256: sha256Schema.optional(),
  properties: imagePropertiesSchema.optional(),
});

/** Metadata of an image registration: as an import, with the sha256 required and an optional size. */
export const imageRegistrationSchema = imageImportSchema.extend({
  sha256: sha256Schema,
  /** Size in bytes, if known before the first fetch. */
  sizeBytes: z.int().nonnegative().optional(),
});
