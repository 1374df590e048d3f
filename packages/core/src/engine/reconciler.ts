import { ErrorCode, NotFoundError, RevisionConflictError } from '../errors.js';
import type { Instance, InstancePatch } from '../model/instance.js';
import type { QuotaDeltas } from '../model/quota.js';
import type { PowerState, TaskState } from '../model/states.js';
import { hasAttachingDevice } from '../model/transitions.js';
import type { DriverInstance } from '../ports/driver.js';
import type { DeleteFlow } from './delete-flow.js';
import { type EngineContext, faultOf, quotaDeltasOf } from './engine-context.js';
import type { DriverTimeouts } from './engine-options.js';
import type { HostLeases } from './host-leases.js';
import { undoInterruptedAttach } from './hot-plug-flow.js';
import { interfaceHotPlug } from './interface-attach-flow.js';
import { stableStateFor } from './power-sync.js';
import type { ResizeFlow } from './resize-flow.js';
import type { ShelveFlow } from './shelve-flow.js';
import { volumeHotPlug } from './volume-attach-flow.js';

/** Whether `hostId` is one of the two hosts of the instance's resize or cold migration. */
function movesBetween(instance: Instance | undefined, hostId: string): boolean {
  const move = instance?.move;
  return move != null && (move.sourceHostId === hostId || move.destHostId === hostId);
}

/** What a reconciliation pass found and did. */
export interface ReconcileReport {
  /** Instances left mid-task that were resolved, with the task they had and the state they got. */
  readonly resolved: ReadonlyArray<{ instanceId: string; task: string; vmState: string }>;
  /**
   * Instances without a task whose devices were still marked `attaching` by a dead engine (an
   * attach its deadline ended before the driver answered): unplugged, released, unrecorded.
   */
  readonly undoneAttaches: readonly string[];
  /** Instances whose power state was corrected. */
  readonly powerSynced: readonly string[];
  /** Guests on hosts unknown to the store. */
  readonly orphans: ReadonlyArray<{ instanceId: string; hostId: string; reaped: boolean }>;
  /** Claims released because their instance was gone or elsewhere. */
  readonly releasedClaims: readonly string[];
  /** Hosts whose driver could not list guests (their instances were left as they were). */
  readonly unreachableHosts: readonly string[];
  /** Quota reservations dropped as abandoned (by a crashed process). */
  readonly expiredReservations: number;
  /** Resized instances confirmed because their confirm window passed (`resizeConfirmWindowMs`). */
  readonly confirmedResizes: readonly string[];
  /** Shelved instances offloaded because `shelvedOffloadTimeMs` passed. */
  readonly offloadedShelves: readonly string[];
  /**
   * Stale copies destroyed: guests on a host whose instance was evacuated from it and now runs on
   * `movedTo` (Nova's `_destroy_evacuated_instances`); `destroyed: false` when the destroy failed.
   */
  readonly staleDestroyed: ReadonlyArray<{
    instanceId: string;
    hostId: string;
    movedTo: string;
    destroyed: boolean;
  }>;
}

/** Which pass: at start-up (also recounts quota) or periodic (while the engine runs). */
export type ReconcileMode = 'startup' | 'periodic';

/** The deadline kind that bounds a task. */
function deadlineOf(task: TaskState): keyof DriverTimeouts {
  switch (task) {
    case 'scheduling':
    case 'networking':
    case 'spawning':
      return 'spawn';
    case 'image_snapshot':
      return 'snapshot';
    case 'deleting':
      return 'destroy';
    case 'rebooting':
    case 'rebooting_hard':
      return 'reboot';
    case 'rebuilding':
      return 'rebuild';
    case 'resize_prep':
    case 'resize_migrating':
    case 'resize_finish':
    case 'resize_reverting':
    case 'resize_confirming':
    case 'migrating':
    case 'shelving':
    case 'shelving_offloading':
    case 'unshelving':
    case 'rescuing':
    case 'unrescuing':
      return 'move';
    case 'pausing':
    case 'unpausing':
    case 'suspending':
    case 'resuming':
      return 'pause';
    default:
      return 'power';
  }
}

/**
 * Reconciliation (Nova's `_init_instance` at start-up and its periodic tasks while running):
 * instances left mid-task are resolved against what their host's driver reports, power states are
 * synced, leaked claims released, abandoned quota reservations dropped (and usage recounted at
 * start-up), interrupted actions closed, and guests unknown to the store reported (and destroyed
 * with `reapOrphans`).
 *
 * A process heals only what it owns: hosts whose lease it holds, and tasks nobody else can be
 * running. When the engine is its storage's sole owner (memory, or SQLite held exclusively) that
 * is every task not running here; on shared storage a task run elsewhere is taken for dead once it
 * has not changed for its deadline plus `staleTaskGraceMs`.
 */
export class Reconciler {
  constructor(
    private readonly ctx: EngineContext,
    private readonly deletes: DeleteFlow,
    private readonly leases: HostLeases,
    private readonly soleOwner: boolean,
    private readonly moves: {
      readonly resizes: Pick<ResizeFlow, 'confirmDue' | 'recover'>;
      readonly shelves: Pick<ShelveFlow, 'offloadDue'>;
    },
  ) {}

  /** Whether this process may heal the host's guests and instances. */
  private owns(hostId: string): boolean {
    return this.soleOwner || this.leases.owns(hostId);
  }

  /** Whether the instance's task is nobody's but a dead process's (or a crashed run of this one). */
  private stale(instance: Instance): boolean {
    if (instance.taskState === null) return false;
    return this.abandoned(instance, deadlineOf(instance.taskState));
  }

  /**
   * Whether the `attaching` marks of an instance without a task are nobody's: no attach of this
   * process still waits for its driver (one whose deadline ended its task keeps its mark until the
   * driver answers), and whoever else could be waiting is taken for dead as a task would be.
   */
  private marksAbandoned(instance: Instance): boolean {
    if (!hasAttachingDevice(instance) || this.ctx.attachesInFlight.has(instance.id)) return false;
    return this.abandoned(instance, 'power');
  }

  /**
   * Whether what the instance shows in progress (a task, a mark) can be nobody's but a dead
   * process's: nothing of it runs here, and on shared storage its host is not another live
   * process's and it has not changed for `deadline` plus the grace.
   */
  private abandoned(instance: Instance, deadline: keyof DriverTimeouts): boolean {
    if (this.ctx.builds.has(instance.id) || this.ctx.deletes.has(instance.id)) return false;
    if (this.soleOwner) return true;
    if (
      instance.hostId &&
      !this.leases.owns(instance.hostId) &&
      this.ctx.deps.registry.has(instance.hostId)
    ) {
      return false;
    }
    const { timeouts, staleTaskGraceMs } = this.ctx.deps.options;
    return instance.updatedAt + timeouts[deadline] + staleTaskGraceMs < this.ctx.now();
  }

  async reconcile(mode: ReconcileMode = 'startup'): Promise<ReconcileReport> {
    const { deps } = this.ctx;
    const resolved: Array<{ instanceId: string; task: string; vmState: string }> = [];
    const powerSynced: string[] = [];
    const undoneAttaches: string[] = [];
    const orphans: Array<{ instanceId: string; hostId: string; reaped: boolean }> = [];
    const releasedClaims: string[] = [];
    const unreachableHosts: string[] = [];
    const staleDestroyed: Array<{ instanceId: string; hostId: string; movedTo: string; destroyed: boolean }> =
      [];
    await this.leases.renew();

    const onHost = new Map<string, Map<string, DriverInstance>>();
    for (const binding of deps.registry.list()) {
      if (!this.owns(binding.id)) continue;
      try {
        const guests = await this.ctx.callDriver(
          'read',
          { operation: 'listInstances', hostId: binding.id },
          undefined,
          (d) => d.listInstances(),
        );
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

    for (const listed of await deps.instances.list()) {
      if (listed.hostId && !onHost.has(listed.hostId) && deps.registry.has(listed.hostId)) continue;
      const power = reported(listed);
      if (listed.taskState !== null) {
        if (!this.stale(listed)) continue;
        const outcome = await this.resolveTask(listed, power);
        resolved.push({ instanceId: listed.id, task: listed.taskState, vmState: outcome });
        continue;
      }
      let instance: Instance | undefined = listed;
      // an attach whose task ended on its deadline, by an engine that died before its driver answered
      if (this.marksAbandoned(listed)) {
        instance = await this.tryApply(listed, await this.undoInterruptedAttaches(listed));
        undoneAttaches.push(listed.id);
      }
      if (!instance || power === undefined || this.ctx.builds.has(instance.id)) continue;
      const vmState = stableStateFor(instance.vmState, power);
      if (power !== instance.powerState || vmState !== instance.vmState) {
        const fault =
          power === 'nostate' && vmState === 'error'
            ? {
                code: ErrorCode.GuestMissing,
                message: `guest not found on host ${instance.hostId}`,
                at: this.ctx.now(),
              }
            : instance.fault;
        await this.tryApply(instance, { powerState: power, vmState, fault });
        powerSynced.push(instance.id);
      }
    }

    // a claim lives until its instance is deleted (an ERROR instance whose guest remains keeps it);
    // one whose instance is gone, or placed elsewhere, is released once no build of it can run
    const live = new Map((await deps.instances.list()).map((i) => [i.id, i]));
    const claimGrace = deps.options.timeouts.spawn + deps.options.staleTaskGraceMs;
    for (const claim of await deps.claims.list()) {
      const owner = live.get(claim.instanceId);
      if (this.ctx.builds.has(claim.instanceId) || this.ctx.deletes.has(claim.instanceId)) continue;
      if (owner && (owner.hostId === claim.hostId || owner.taskState !== null)) continue;
      // a resize holds claims on both hosts until its confirm or revert
      if (owner?.move && (claim.id === owner.move.sourceClaimId || claim.id === owner.move.destClaimId))
        continue;
      if (!this.soleOwner && claim.createdAt + claimGrace > this.ctx.now()) continue;
      await deps.scheduler.release(claim);
      releasedClaims.push(claim.id);
    }
    if (mode === 'startup') deps.scheduler.restore?.(await deps.claims.list());

    const expiredReservations = (await deps.quota.expireStale?.()) ?? 0;
    if (mode === 'startup') {
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
    }

    for (const action of await deps.actions.listPending()) {
      const owner = live.get(action.instanceId);
      if (this.ctx.builds.has(action.instanceId) || this.ctx.deletes.has(action.instanceId)) continue;
      if (owner && owner.taskState !== null) continue;
      const at = this.ctx.now();
      await deps.actions.finish(action.id, {
        result: 'error',
        finishedAt: at,
        fault: {
          code: ErrorCode.Interrupted,
          message: 'interrupted: its engine stopped before it ended',
          at,
        },
      });
    }

    for (const [hostId, guests] of onHost) {
      for (const guest of guests.values()) {
        const owner = live.get(guest.instanceId);
        if (owner && owner.hostId === hostId) continue;
        if (this.ctx.builds.has(guest.instanceId)) continue;
        // the source's copy (or the destination's guest) of a resize waiting for its end
        if (movesBetween(owner, hostId)) continue;
        // a guest whose instance another process is building or moving is not an orphan
        if (owner && owner.taskState !== null) continue;
        if (owner?.hostId && (await this.evacuated(owner.id))) {
          // the instance was evacuated from this host and runs on another: this guest is a stale
          // copy (never one whose record names this host: those were skipped above)
          const destroyed = await this.ctx
            .callDriver(
              'destroy',
              { operation: 'destroy', instanceId: owner.id, hostId },
              undefined,
              (d, call) => d.destroy({ ...owner, hostId }, call),
            )
            .then(
              () => true,
              () => false,
            );
          staleDestroyed.push({ instanceId: owner.id, hostId, movedTo: owner.hostId, destroyed });
          continue;
        }
        let reaped = false;
        if (deps.options.reapOrphans) {
          await this.ctx.callDriver(
            'destroy',
            { operation: 'destroy', instanceId: guest.instanceId, hostId },
            undefined,
            (d, call) => d.destroy(orphanStub(guest, hostId, this.ctx.now()), call),
          );
          reaped = true;
        }
        orphans.push({ instanceId: guest.instanceId, hostId, reaped });
        await this.ctx.record({
          type: 'instance.orphan',
          instanceId: guest.instanceId,
          at: this.ctx.now(),
          hostId,
          powerState: guest.powerState,
          reaped,
        });
      }
    }
    const confirmedResizes = await this.moves.resizes.confirmDue();
    const offloadedShelves = await this.moves.shelves.offloadDue();
    await deps.eventLog.prune({ keepLast: deps.options.eventRetention });
    return {
      confirmedResizes,
      offloadedShelves,
      resolved,
      undoneAttaches,
      powerSynced,
      orphans,
      releasedClaims,
      unreachableHosts,
      expiredReservations,
      staleDestroyed,
    };
  }

  /** Whether the instance was moved by a successful evacuation (Nova checks its migration records). */
  private async evacuated(instanceId: string): Promise<boolean> {
    const actions = await this.ctx.deps.actions.list(instanceId);
    return actions.some((a) => a.action === 'evacuate' && a.result === 'success');
  }

  /** Resolves an instance a crash left mid-task. Returns the vmState it ends in. */
  private async resolveTask(instance: Instance, power: PowerState | undefined): Promise<string> {
    const { deps } = this.ctx;
    if (instance.taskState === 'deleting') {
      await this.deletes.delete(instance.id, undefined, { internal: true });
      return 'deleted';
    }
    // a resize or cold migration a crash interrupted: finished (confirm) or rolled back to the source
    if (instance.move) return this.moves.resizes.recover(instance);
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
        await this.ctx
          .callDriver(
            'destroy',
            { operation: 'destroy', instanceId: instance.id, hostId: instance.hostId },
            undefined,
            (d, call) => d.destroy(instance, call),
          )
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
          new Error(`build interrupted: its engine stopped during ${instance.taskState}`),
          this.ctx.now(),
          { task: instance.taskState },
        ),
      });
      return 'error';
    }
    const actual = power ?? instance.powerState;
    const vmState = stableStateFor(instance.vmState, actual);
    // an attach its engine did not finish: the device it marked is unplugged and released
    const undone = this.ctx.attachesInFlight.has(instance.id)
      ? {}
      : await this.undoInterruptedAttaches(instance);
    await this.tryApply(instance, { taskState: null, powerState: actual, vmState, ...undone });
    return vmState;
  }

  /** The patch that drops the volumes and ports a dead engine left marked `attaching`, once undone. */
  private async undoInterruptedAttaches(instance: Instance): Promise<InstancePatch> {
    return {
      ...(await undoInterruptedAttach(this.ctx, volumeHotPlug(this.ctx), instance)),
      ...(await undoInterruptedAttach(this.ctx, interfaceHotPlug(this.ctx), instance)),
    };
  }

  /** Writes `patch` unless the instance changed or went meanwhile; resolves what was written. */
  private async tryApply(instance: Instance, patch: InstancePatch): Promise<Instance | undefined> {
    try {
      return await this.ctx.apply(instance, patch);
    } catch (e) {
      if (!(e instanceof NotFoundError) && !(e instanceof RevisionConflictError)) throw e;
      return undefined;
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
