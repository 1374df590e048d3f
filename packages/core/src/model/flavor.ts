import { z } from 'zod';
import { displayNameSchema, idSchema, textRecordSchema } from './names.js';
import { resourcesSchema } from './resources.js';

/**
 * A flavor: the size of an instance. `extraSpecs` follow Nova's conventions where the scheduler
 * reads them (`trait:NAME=required|forbidden`, `aggregate_instance_extra_specs:KEY=VALUE`).
 */
export const flavorSchema = z.object({
  id: idSchema,
  name: displayNameSchema,
  /** Virtual CPUs. */
  vcpus: z.int().min(1).max(4096),
  /** Memory in MiB. */
  ramMb: z.int().min(1),
  /** Root disk in GiB (0: the image's size decides). */
  diskGb: z.int().nonnegative().default(0),
  /** Extra resource classes (`CUSTOM_*`) requested per instance. */
  resources: resourcesSchema.default({}),
  extraSpecs: textRecordSchema({ itemName: 'extra specs' }).default({}),
});
/** A flavor: the size of an instance. */
export type Flavor = z.output<typeof flavorSchema>;

/** Resource amounts one instance of the flavor claims on a host. */
export function flavorResources(flavor: Flavor): Record<string, number> {
  return { VCPU: flavor.vcpus, MEMORY_MB: flavor.ramMb, DISK_GB: flavor.diskGb, ...flavor.resources };
}
