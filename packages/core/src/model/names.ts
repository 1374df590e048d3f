import { z } from 'zod';

/**
 * Identifier of a catalog entity (flavor, image, host, project, user): 1-255 characters of
 * letters, digits and `._:@-`. Strict because ids end up in file names, labels and XML.
 */
export const idSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/,
    'must be letters, digits and ._:@- starting with a letter or digit',
  );

/**
 * A display name: 1-255 characters, no control characters. Any other character (XML or shell
 * metacharacters included) is allowed; drivers must escape names where they use them.
 */
export const displayNameSchema = z
  .string()
  .min(1)
  .max(255)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

/** User metadata: at most 128 pairs, keys 1-255 and values 0-255 characters, no control characters. */
export const metadataSchema = z
  .record(displayNameSchema, z.string().max(255))
  .refine((m) => Object.keys(m).length <= 128, { message: 'at most 128 metadata items' });

/** RFC 4122 UUID as a string. */
export const uuidSchema = z.uuid();
