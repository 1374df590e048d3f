import { z } from 'zod';
import { refusingReservedKeys } from './reserved-keys.js';

/** Standard resource classes (Placement's names); custom classes are `CUSTOM_[A-Z0-9_]+`. */
export const ResourceClass = {
  VCPU: 'VCPU',
  MEMORY_MB: 'MEMORY_MB',
  DISK_GB: 'DISK_GB',
} as const;

/** A resource class name: a standard one or `CUSTOM_*`. */
export const resourceClassSchema = z
  .string()
  .regex(
    /^(VCPU|MEMORY_MB|DISK_GB|CUSTOM_[A-Z0-9_]{1,200})$/,
    'must be VCPU, MEMORY_MB, DISK_GB or CUSTOM_[A-Z0-9_]+',
  );

/** Amounts per resource class (non-negative integers). */
export const resourcesSchema = refusingReservedKeys(z.record(resourceClassSchema, z.int().nonnegative()));
/** Amounts per resource class (non-negative integers). */
export type Resources = Readonly<Record<string, number>>;

/** Inventory of one resource class on a host, as in OpenStack Placement. */
export const inventorySchema = z.object({
  /** Physical amount. */
  total: z.int().nonnegative(),
  /** Amount kept back for the host itself. */
  reserved: z.int().nonnegative().default(0),
  /** Overcommit factor: capacity = (total - reserved) * allocationRatio. */
  allocationRatio: z.number().positive().default(1),
});
/** Inventory of one resource class on a host. */
export type Inventory = z.output<typeof inventorySchema>;

/** Schedulable capacity of an inventory: `(total - reserved) * allocationRatio`, floored. */
export function capacityOf(inv: Inventory): number {
  return Math.floor((inv.total - inv.reserved) * inv.allocationRatio);
}
