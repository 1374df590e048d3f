import { z } from 'zod';

/** Per-project limits. `-1` means unlimited. */
export const quotaLimitsSchema = z.object({
  instances: z.int().min(-1),
  cores: z.int().min(-1),
  ramMb: z.int().min(-1),
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
