import { z } from 'zod';
import { displayNameSchema, idSchema, plainTextSchema, textRecordSchema } from './names.js';
import { refusingReservedKeys } from './reserved-keys.js';
import { inventorySchema, resourceClassSchema } from './resources.js';

/** A host aggregate: a named group of hosts with metadata (e.g. `filter_tenant_id`, `ssd=true`). */
export const aggregateSchema = z.object({
  id: idSchema,
  name: displayNameSchema,
  metadata: textRecordSchema({ itemName: 'metadata items' }).default({}),
});
/** A host aggregate. */
export type Aggregate = z.output<typeof aggregateSchema>;

/** A trait name: standard (`HW_CPU_X86_AVX2`, `COMPUTE_*`) or `CUSTOM_*`; upper case. */
export const traitSchema = z.string().regex(/^[A-Z][A-Z0-9_]{0,254}$/, 'must be an upper-case trait name');

/** A compute host: one hypervisor (or container engine) and its schedulable resources. */
export const hostSchema = z.object({
  id: idSchema,
  name: displayNameSchema,
  /** `qemu`, `kvm`, `docker`, `lxc`, `xen`, `hyperv`, `fake`. */
  hypervisorType: displayNameSchema,
  /** CPU architecture, e.g. `x86_64`. */
  architecture: displayNameSchema.default('x86_64'),
  availabilityZone: displayNameSchema.default('nova'),
  /** Scheduling domain (Nova cell) the host belongs to. */
  cell: displayNameSchema.default('cell1'),
  aggregates: z.array(aggregateSchema).default([]),
  traits: z.array(traitSchema).default([]),
  /** Inventory per resource class. */
  inventory: refusingReservedKeys(z.record(resourceClassSchema, inventorySchema)),
  /** Capability flags of the host's driver that are on (for capability-aware scheduling). */
  capabilities: z.array(plainTextSchema(255)).default([]),
  /** Operator switch: a disabled host takes no new instances. */
  enabled: z.boolean().default(true),
  /** Why the operator disabled the host (Nova's `disabled_reason`), `null` when enabled or not said. */
  disabledReason: plainTextSchema(255).nullable().default(null),
  /** Liveness: a host that is down takes no new instances. */
  up: z.boolean().default(true),
});
/** A compute host. */
export type Host = z.output<typeof hostSchema>;
/** Host fields as given by callers (defaults not yet applied). */
export type HostInput = z.input<typeof hostSchema>;
