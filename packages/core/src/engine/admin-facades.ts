import { z } from 'zod';
import { NotFoundError } from '../errors.js';
import { type Flavor, flavorSchema } from '../model/flavor.js';
import { aggregateSchema, type Host } from '../model/host.js';
import { displayNameSchema, idSchema, plainTextSchema } from '../model/names.js';
import { type QuotaLimits, quotaLimitsSchema } from '../model/quota.js';
import { type ServerGroup, type ServerGroupInput, serverGroupSchema } from '../model/server-group.js';
import { parseInput } from '../model/validation.js';
import type { QuotaEngine, QuotaUsage } from '../ports/quota.js';
import type { Scheduler } from '../ports/scheduler.js';
import type { FlavorStore, HostStore, ServerGroupStore } from '../ports/stores.js';

/** Parses one named value, so a rejection names the field. */
function field<S extends z.ZodType>(name: string, schema: S, value: unknown): z.output<S> {
  return (parseInput(z.object({ [name]: schema }), { [name]: value }) as Record<string, z.output<S>>)[name]!;
}

/** What an operator may change on a host: exactly these keys, typed (anything else is refused). */
export const hostStatusSchema = z.strictObject({
  /** A disabled host takes no new instances; its instances keep running. */
  enabled: z.boolean().optional(),
  /** Why the host is disabled (kept until it is enabled again). */
  disabledReason: plainTextSchema(255).nullable().optional(),
  /** Liveness: a host that is down takes no new instances. */
  up: z.boolean().optional(),
});
/** A change of a host's status. */
export type HostStatus = z.input<typeof hostStatusSchema>;

/**
 * Where an operator places a host: its aggregates (replacing the current list) and, when given,
 * its availability zone. Exactly these keys, typed; aggregate ids unique.
 */
export const hostPlacementSchema = z.strictObject({
  aggregates: z
    .array(aggregateSchema)
    .max(1000)
    .refine((list) => new Set(list.map((a) => a.id)).size === list.length, 'aggregate ids must be unique'),
  availabilityZone: displayNameSchema.optional(),
});
/** A change of a host's aggregates and availability zone. */
export type HostPlacement = z.input<typeof hostPlacementSchema>;

/** Flavor fields as callers write them (defaults applied on create). */
export type FlavorInput = z.input<typeof flavorSchema>;

/** Validated administration of flavors. */
export class FlavorAdmin {
  constructor(private readonly store: FlavorStore) {}

  /** @throws ValidationError naming the field; DuplicateError if the id exists. */
  async create(input: FlavorInput): Promise<Flavor> {
    const flavor = parseInput(flavorSchema, { ...input, name: input.name ?? input.id });
    await this.store.add(flavor);
    return flavor;
  }
  async get(id: string): Promise<Flavor | undefined> {
    return this.store.get(id);
  }
  async list(): Promise<Flavor[]> {
    return this.store.list();
  }
  /**
   * Replaces a flavor's extra specs in one step (the scheduler reads the new ones at once).
   * @throws ValidationError naming the field; NotFoundError for an unknown flavor
   */
  async setExtraSpecs(id: string, extraSpecs: Readonly<Record<string, string>>): Promise<Flavor> {
    const flavorId = field('id', idSchema, id);
    const current = await this.store.get(flavorId);
    if (!current) throw new NotFoundError('flavor', flavorId, 'id');
    const next = parseInput(flavorSchema, { ...current, extraSpecs });
    if (!(await this.store.replace(next))) throw new NotFoundError('flavor', flavorId, 'id');
    return next;
  }
  /** Removes a flavor (instances keep their copy). Idempotent. */
  async delete(id: string): Promise<void> {
    await this.store.remove(field('id', idSchema, id));
  }
}

/** Validated per-project quota limits and usage. */
export class QuotaAdmin {
  constructor(private readonly quota: QuotaEngine) {}

  /** Limits and usage of a project (the defaults for a project never seen). */
  async get(projectId: string): Promise<QuotaUsage> {
    return this.quota.usage(field('projectId', idSchema, projectId));
  }
  /**
   * Sets some of a project's limits.
   * @throws ValidationError naming the field (not an integer, negative, unknown resource)
   */
  async set(projectId: string, limits: Partial<QuotaLimits>): Promise<QuotaUsage> {
    const id = field('projectId', idSchema, projectId);
    const parsed = parseInput(quotaLimitsSchema.partial(), limits);
    await this.quota.setLimits(id, parsed);
    return this.quota.usage(id);
  }
}

/** Validated administration of server groups. */
export class ServerGroupAdmin {
  constructor(private readonly store: ServerGroupStore) {}

  /** @throws ValidationError naming the field; DuplicateError if the id exists. */
  async create(input: ServerGroupInput): Promise<ServerGroup> {
    const group = parseInput(serverGroupSchema, { ...input, members: [] });
    await this.store.add(group);
    return group;
  }
  async get(id: string): Promise<ServerGroup | undefined> {
    return this.store.get(id);
  }
  async list(projectId?: string): Promise<ServerGroup[]> {
    return this.store.list(projectId);
  }
  /** Deletes a server group; its members stay. Idempotent. */
  async delete(id: string): Promise<void> {
    await this.store.remove(id);
  }
}

/** Reads and validated status changes of hosts (binding and removal live on the engine). */
export class HostAdmin {
  constructor(
    private readonly store: HostStore,
    private readonly scheduler: Scheduler,
    /** Called after a status change is stored (the engine marks a down host's instances). */
    private readonly changed?: (before: Host, after: Host) => Promise<void>,
  ) {}

  async get(id: string): Promise<Host | undefined> {
    return this.store.get(id);
  }
  async list(): Promise<Host[]> {
    return this.store.list();
  }
  /**
   * Enables or disables a host (with a reason) or marks it up or down; the scheduler skips
   * disabled and down hosts at once. Marked down, the host's idle instances show power state
   * `nostate` (unknown); marked up again, they take the state their driver reports.
   * @throws ValidationError naming the field (a non-boolean `enabled`, an unknown key);
   * NotFoundError for an unknown host
   */
  async setStatus(hostId: string, status: HostStatus): Promise<Host> {
    const change = parseInput(hostStatusSchema, status);
    const host = await this.store.get(hostId);
    if (!host) throw new NotFoundError('host', hostId, 'hostId');
    const enabled = change.enabled ?? host.enabled;
    const next: Host = {
      ...host,
      enabled,
      up: change.up ?? host.up,
      disabledReason: enabled ? null : (change.disabledReason ?? host.disabledReason ?? null),
    };
    await this.store.upsert(next);
    this.scheduler.upsertHost(next);
    await this.changed?.(host, next).catch(() => undefined);
    return next;
  }

  /**
   * Replaces a host's aggregates and, when given, moves it to another availability zone; the
   * scheduler's filters (availability zone, aggregate metadata, tenant isolation) see the change
   * at once. Instances already on the host keep their recorded zone. A later `refreshHost` or
   * re-`addHost` rebuilds the host from its binding, so a caller keeping aggregates elsewhere
   * applies them again then.
   * @throws ValidationError naming the field (an unknown key, a bad aggregate, duplicate ids);
   * NotFoundError for an unknown host
   */
  async setPlacement(hostId: string, placement: HostPlacement): Promise<Host> {
    const change = parseInput(hostPlacementSchema, placement);
    const host = await this.store.get(hostId);
    if (!host) throw new NotFoundError('host', hostId, 'hostId');
    const next: Host = {
      ...host,
      aggregates: change.aggregates,
      availabilityZone: change.availabilityZone ?? host.availabilityZone,
    };
    await this.store.upsert(next);
    this.scheduler.upsertHost(next);
    return next;
  }
}
