import { z } from 'zod';
import { refusingReservedKeys } from './reserved-keys.js';

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

/** No control character anywhere (Unicode `Cc`: U+0000-U+001F, U+007F-U+009F). */
const NO_CONTROL_CHARACTERS = /^\P{Cc}*$/u;

/**
 * A string of at most `max` characters without control characters (NUL, newlines, escapes, C1
 * controls); it may be empty (add `.min(1)` where it must not be). Any other character (XML,
 * shell, SQL or JSON metacharacters included) is allowed: whoever writes it into a file, label,
 * command or query must escape it there.
 */
export function plainTextSchema(max: number) {
  return z.string().max(max).regex(NO_CONTROL_CHARACTERS, 'must not contain control characters');
}

/**
 * A display name: 1-255 characters, no control characters. Any other character (XML or shell
 * metacharacters included) is allowed; drivers must escape names where they use them.
 */
export const displayNameSchema = plainTextSchema(255).min(1);

/**
 * A record of user-supplied strings (`key: value`), keys 1-255 and values 0-`maxValue`
 * characters without control characters; the keys `__proto__`, `constructor` and `prototype`
 * are refused at their path, as are more than `maxKeys` pairs.
 */
export function textRecordSchema(options: { maxKeys?: number; maxValue?: number; itemName?: string } = {}) {
  return refusingReservedKeys(z.record(displayNameSchema, plainTextSchema(options.maxValue ?? 255)), {
    ...(options.maxKeys !== undefined ? { maxKeys: options.maxKeys } : {}),
    ...(options.itemName ? { itemName: options.itemName } : {}),
  });
}

/**
 * User metadata: at most 128 pairs, keys 1-255 and values 0-255 characters, no control
 * characters; `__proto__`, `constructor` and `prototype` keys are refused.
 */
export const metadataSchema = textRecordSchema({ maxKeys: 128, itemName: 'metadata items' });

/** RFC 4122 UUID as a string. */
export const uuidSchema = z.uuid();
