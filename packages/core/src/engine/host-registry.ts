import { ConfigurationError, DuplicateError, NotFoundError } from '../errors.js';
import type { Aggregate, Host } from '../model/host.js';
import { hostSchema } from '../model/host.js';
import { parseInput } from '../model/validation.js';
import type { ComputeDriver, HostReport } from '../ports/driver.js';

/** How a host joins the engine: its id, its driver and the operator's placement settings. */
export interface HostBinding {
  /** Host id (letters, digits, `._:@-`). */
  readonly id: string;
  readonly driver: ComputeDriver;
  /** Display name; the driver's hostname by default. */
  readonly name?: string;
  readonly availabilityZone?: string;
  /** Scheduling domain (cell). Default `cell1`. */
  readonly cell?: string;
  readonly aggregates?: readonly Aggregate[];
  /** Traits added to the ones the driver reports. */
  readonly traits?: readonly string[];
  /** Allocation ratios per resource class overriding the driver's (e.g. `{ VCPU: 16 }`). */
  readonly allocationRatios?: Readonly<Record<string, number>>;
  /** Reserved amounts per resource class overriding the driver's. */
  readonly reserved?: Readonly<Record<string, number>>;
  readonly enabled?: boolean;
}

/** Builds the scheduler's view of a host from its binding and its driver's report. */
export function hostFromReport(binding: HostBinding, report: HostReport): Host {
  const inventory: Record<string, { total: number; reserved: number; allocationRatio: number }> = {};
  for (const [rc, inv] of Object.entries(report.inventory)) {
    inventory[rc] = {
      total: inv.total,
      reserved: binding.reserved?.[rc] ?? inv.reserved,
      allocationRatio: binding.allocationRatios?.[rc] ?? inv.allocationRatio,
    };
  }
  const capabilities = Object.entries(binding.driver.capabilities)
    .filter(([, on]) => on)
    .map(([name]) => name);
  return parseInput(hostSchema, {
    id: binding.id,
    name: binding.name ?? report.hostname,
    hypervisorType: report.hypervisorType,
    architecture: report.architecture,
    availabilityZone: binding.availabilityZone ?? 'nova',
    cell: binding.cell ?? 'cell1',
    aggregates: binding.aggregates ?? [],
    traits: [...new Set([...report.traits, ...(binding.traits ?? [])])],
    inventory,
    capabilities,
    enabled: binding.enabled ?? true,
    up: true,
  });
}

/** The drivers of the hosts this engine manages, by host id. */
export class HostRegistry {
  private readonly bindings = new Map<string, HostBinding>();

  /** @throws DuplicateError when the host id is already bound. */
  add(binding: HostBinding): void {
    if (this.bindings.has(binding.id)) throw new DuplicateError('host', binding.id);
    this.bindings.set(binding.id, binding);
  }

  /** Unbinds a host. Idempotent. */
  remove(hostId: string): void {
    this.bindings.delete(hostId);
  }

  /** @throws ConfigurationError when no driver is bound to the host. */
  driverFor(hostId: string): ComputeDriver {
    const binding = this.bindings.get(hostId);
    if (!binding) throw new ConfigurationError('hosts', `no driver bound to host ${hostId}`);
    return binding.driver;
  }

  /** The binding of a host. @throws NotFoundError */
  get(hostId: string): HostBinding {
    const binding = this.bindings.get(hostId);
    if (!binding) throw new NotFoundError('host', hostId);
    return binding;
  }

  has(hostId: string): boolean {
    return this.bindings.has(hostId);
  }

  /** Every binding, in the order added. */
  list(): HostBinding[] {
    return [...this.bindings.values()];
  }
}
