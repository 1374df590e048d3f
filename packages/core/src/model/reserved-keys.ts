import { z } from 'zod';

/**
 * Keys refused in user-supplied records (metadata, extra specs, image properties): they name an
 * object's prototype machinery. zod drops an own `__proto__` key silently and keeps
 * `constructor`/`prototype`, so without this check they would vanish or reach code that indexes
 * plain objects by key.
 */
export const reservedKeys: readonly string[] = Object.freeze(['__proto__', 'constructor', 'prototype']);

/** Options of {@link refusingReservedKeys}. */
export interface ReservedKeysOptions {
  /** Refuse records with more keys than this before parsing them (bounds the work on huge input). */
  readonly maxKeys?: number;
  /** What the records are called in the too-many-keys message, e.g. `metadata items`. */
  readonly itemName?: string;
}

/**
 * Wraps a record (or catch-all object) schema so that the raw input is checked first: a reserved
 * key ({@link reservedKeys}) is an issue at that key's path (`metadata.__proto__`), and more
 * than `maxKeys` keys is an issue at the record itself. Input that is not a plain object goes
 * to `schema` unchanged (which reports its type).
 */
export function refusingReservedKeys<O, I>(
  schema: z.ZodType<O, I>,
  options: ReservedKeysOptions = {},
): z.ZodPipe<z.ZodCustom<I, I>, z.ZodType<O, I>> {
  const { maxKeys, itemName = 'items' } = options;
  return z
    .custom<I>()
    .superRefine((value, ctx) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
      for (const key of reservedKeys) {
        if (Object.hasOwn(value, key)) {
          ctx.addIssue({ code: 'custom', path: [key], message: `the key ${key} is reserved` });
        }
      }
      if (maxKeys !== undefined && Object.keys(value).length > maxKeys) {
        ctx.addIssue({ code: 'custom', message: `at most ${maxKeys} ${itemName}` });
      }
    })
    .pipe(schema);
}
