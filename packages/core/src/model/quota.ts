import { z } from 'zod';

/** One limit: a safe integer, `-1` meaning unlimited (other negatives, fractions, NaN and ±Infinity are refused). */
const limitSchema = z.int().min(-1, 'must be an integer >= 0, or -1 for unlimited');

/**
 * Per-project limits. `-1` means unlimited. Every field is required (use `.partial()` for an
 * update) and unknown fields are refused, so a typo never passes as "no change".
 */
export const quotaLimitsSchema = z.strictObject({
  instances: limitSchema,
  cores: limitSchema,
  ramMb: limitSchema,
});
/** Per-project limits. `-1` means unlimited. */
export type QuotaLimits = z.output<typeof quotaLimitsSchema>;

/** Amounts counted against quota. */
export interface QuotaDeltas {
  readonly instances: number;
  readonly cores: number;
  readonly ramMb: number;
}

/** Nova's default limits: 10 instances, 20 cores, 50 GiB of RAM. */
export const defaultQuotaLimits: QuotaLimits = Object.freeze({ instances: 10, cores: 20, ramMb: 51_200 });

/** Names of the quota resources, in the order they are checked. */
export const quotaResources = ['instances', 'cores', 'ramMb'] as const;
