import { NotFoundError, RevisionConflictError } from '../errors.js';
import type { Instance } from '../model/instance.js';
import type { QuotaDeltas } from '../model/quota.js';
import type { PowerState } from '../model/states.js';
import type { DriverInstance } from '../ports/driver.js';
import type { DeleteFlow } from './delete-flow.js';
import { type EngineContext, faultOf, quotaDeltasOf } from './engine-context.js';
import { stableStateFor } from './power-sync.js';

/** What a reconciliation pass found and did. */
export interface ReconcileReport {
  /** Instances left mid-task that were resolved, with the task they had and the state they got. */
  readonly resolved: ReadonlyArray<{ instanceId: string; task: string; vmState: string }>;
  /** Instances whose power state was corrected. */
  readonly powerSynced: readonly string[];
  /** Guests on hosts unknown to the store. */
  readonly orphans: ReadonlyArray<{ instanceId: string; hostId: string; reaped: boolean }>;
  /** Claims released because their instance was gone or elsewhere. */
  readonly releasedClaims: readonly string[];
  /** Hosts whose driver could not list guests (their instances were left as they were). */
  readonly unreachableHosts: readonly string[];
}

/**
 * Start-up reconciliation after a crash (Nova's `_init_instance` and power-state sync): every
 * instance left mid-task is resolved against what its host's driver reports, power states are
 * synced, leaked claims are released, quota usage is recounted, interrupted actions are closed,
 * and guests unknown to the store are reported (and destroyed with `reapOrphans`).
 */
export class Reconciler {
  constructor(
    private readonly ctx: EngineContext,
    private readonly deletes: DeleteFlow,
  ) {}

  async reconcile(): Promise<ReconcileReport> {
    const { deps } = this.ctx;
    const resolved: Array<{ instanceId: string; task: string; vmState: string }> = [];
    const powerSynced: string[] = [];
    const orphans: Array<{ instanceId: string; hostId: string; reaped: boolean }> = [];
    const releasedClaims: string[] = [];
    const unreachableHosts: string[] = [];

    const onHost = new Map<string, Map<string, DriverInstance>>();
    for (const binding of deps.registry.list()) {
      try {
        const guests = await binding.driver.listInstances();
        onHost.set(binding.id, new Map(guests.map((g) => [g.instanceId, g])));
      } catch {
        unreachableHosts.push(binding.id);
      }
    }
    const reported = (i: Instance): PowerState | undefined => {
      if (!i.hostId) return undefined;
      const guests = onHost.get(i.hostId);
      if (!guests) return undefined;
      return guests.get(i.id)?.powerState ?? 'nostate';
    };

    for (const instance of await deps.instances.list()) {
      if (instance.hostId && !onHost.has(instance.hostId) && deps.registry.has(instance.hostId)) continue;
      const power = reported(instance);
      if (instance.taskState !== null && !this.ctx.builds.has(instance.id)) {
        const outcome = await this.resolveTask(instance, power);
        resolved.push({ instanceId: instance.id, task: instance.taskState, vmState: outcome });
        continue;
      }
      if (power === undefined || instance.taskState !== null) continue;
      const vmState = stableStateFor(instance.vmState, power);
      if (power !== instance.powerState || vmState !== instance.vmState) {
        const fault =
          power === 'nostate' && vmState === 'error'
            ? {
                code: 'NLFS_GUEST_MISSING',
                message: `guest not found on host ${instance.hostId}`,
                at: this.ctx.now(),
              }
            : instance.fault;
        await this.tryApply(instance, { powerState: power, vmState, fault });
        powerSynced.push(instance.id);
      }
    }

    const live = new Map((await deps.instances.list()).map((i) => [i.id, i]));
    for (const claim of await deps.claims.list()) {
      const owner = live.get(claim.instanceId);
      const inFlight = this.ctx.builds.has(claim.instanceId);
      if (!inFlight && (!owner || owner.hostId !== claim.hostId || owner.vmState === 'error')) {
        await deps.scheduler.release(claim);
        releasedClaims.push(claim.id);
      }
    }
    deps.scheduler.restore?.(await deps.claims.list());

    const usage = new Map<string, QuotaDeltas>();
    for (const i of live.values()) {
      const d = usage.get(i.projectId) ?? { instances: 0, cores: 0, ramMb: 0 };
      const add = quotaDeltasOf(i);
      usage.set(i.projectId, {
        instances: d.instances + add.instances,
        cores: d.cores + add.cores,
        ramMb: d.ramMb + add.ramMb,
      });
    }
    await deps.quota.resync(usage);

    for (const action of await deps.actions.listPending()) {
      const owner = live.get(action.instanceId);
      if (owner && (owner.taskState !== null || this.ctx.builds.has(owner.id))) continue;
      await deps.actions.finish(action.id, {
        result: 'error',
        finishedAt: this.ctx.now(),
        fault: { code: 'NLFS_INTERRUPTED', message: 'interrupted by an engine restart', at: this.ctx.now() },
      });
    }

    for (const [hostId, guests] of onHost) {
      for (const guest of guests.values()) {
        const owner = live.get(guest.instanceId);
        if (owner && owner.hostId === hostId) continue;
        if (this.ctx.builds.has(guest.instanceId)) continue;
        let reaped = false;
        if (deps.options.reapOrphans) {
          await deps.registry.driverFor(hostId).destroy(orphanStub(guest, hostId, this.ctx.now()));
          reaped = true;
        }
        orphans.push({ instanceId: guest.instanceId, hostId, reaped });
        this.ctx.emit(() => ({
          type: 'instance.orphan',
          instanceId: guest.instanceId,
          at: this.ctx.now(),
          hostId,
          powerState: guest.powerState,
          reaped,
        }));
      }
    }
    return { resolved, powerSynced, orphans, releasedClaims, unreachableHosts };
  }

  /** Resolves an instance a crash left mid-task. Returns the vmState it ends in. */
  private async resolveTask(instance: Instance, power: PowerState | undefined): Promise<string> {
    const { deps } = this.ctx;
    if (instance.taskState === 'deleting') {
      await this.deletes.delete(instance.id);
      return 'deleted';
    }
    if (instance.vmState === 'building') {
      if (power === 'running' && instance.hostId) {
        const hasClaim = (await deps.claims.list({ instanceId: instance.id })).some(
          (c) => c.hostId === instance.hostId,
        );
        if (hasClaim) {
          await this.tryApply(instance, {
            vmState: 'active',
            taskState: null,
            powerState: 'running',
            launchedAt: this.ctx.now(),
          });
          return 'active';
        }
      }
      if (instance.hostId && deps.registry.has(instance.hostId)) {
        await deps.registry
          .driverFor(instance.hostId)
          .destroy(instance)
          .catch(() => undefined);
      }
      for (const claim of await deps.claims.list({ instanceId: instance.id }))
        await deps.scheduler.release(claim);
      await this.tryApply(instance, {
        vmState: 'error',
        taskState: null,
        powerState: 'nostate',
        hostId: null,
        fault: faultOf(
          new Error(`build interrupted by an engine restart during ${instance.taskState}`),
          this.ctx.now(),
          {
            task: instance.taskState,
          },
        ),
      });
      return 'error';
    }
    const actual = power ?? instance.powerState;
    const vmState = stableStateFor(instance.vmState, actual);
    await this.tryApply(instance, { taskState: null, powerState: actual, vmState });
    return vmState;
  }

  private async tryApply(instance: Instance, patch: Parameters<EngineContext['apply']>[1]): Promise<void> {
    try {
      await this.ctx.apply(instance, patch);
    } catch (e) {
      if (!(e instanceof NotFoundError) && !(e instanceof RevisionConflictError)) throw e;
    }
  }
}

function orphanStub(guest: DriverInstance, hostId: string, now: number): Instance {
  return {
    id: guest.instanceId,
    name: guest.instanceId,
    projectId: guest.projectId ?? 'unknown',
    userId: 'unknown',
    flavor: { id: 'unknown', name: 'unknown', vcpus: 1, ramMb: 1, diskGb: 0, resources: {}, extraSpecs: {} },
    imageId: 'unknown',
    hostId,
    availabilityZone: null,
    vmState: 'active',
    taskState: 'deleting',
    powerState: guest.powerState,
    fault: null,
    metadata: {},
    hints: {},
    createdAt: now,
    updatedAt: now,
    launchedAt: null,
    revision: 0,
  };
}
