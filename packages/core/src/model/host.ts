import { z } from 'zod';
import { displayNameSchema, idSchema } from './names.js';
import { inventorySchema, resourceClassSchema } from './resources.js';

/** A host aggregate: a named group of hosts with metadata (e.g. `filter_tenant_id`, `ssd=true`). */
export const aggregateSchema = z.object({
  id: idSchema,
  name: displayNameSchema,
  metadata: z.record(z.string().min(1).max(255), z.string().max(255)).default({}),
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
  hypervisorType: z.string().min(1),
  /** CPU architecture, e.g. `x86_64`. */
  architecture: z.string().default('x86_64'),
  availabilityZone: z.string().min(1).default('nova'),
  /** Scheduling domain (Nova cell) the host belongs to. */
  cell: z.string().min(1).default('cell1'),
  aggregates: z.array(aggregateSchema).default([]),
  traits: z.array(traitSchema).default([]),
  /** Inventory per resource class. */
  inventory: z.record(resourceClassSchema, inventorySchema),
  /** Capability flags of the host's driver that are on (for capability-aware scheduling). */
  capabilities: z.array(z.string()).default([]),
  /** Operator switch: a disabled host takes no new instances. */
  enabled: z.boolean().default(true),
  /** Liveness: a host that is down takes no new instances. */
  up: z.boolean().default(true),
});
/** A compute host. */
export type Host = z.output<typeof hostSchema>;
/** Host fields as given by callers (defaults not yet applied). */
export type HostInput = z.input<typeof hostSchema>;
