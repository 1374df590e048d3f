import { z } from 'zod';
import {
  DeadlineExceededError,
  EngineClosedError,
  ErrorCode,
  HostNotDownError,
  InvalidStateError,
  NotFoundError,
  RevisionConflictError,
} from '../errors.js';
import type { InstanceAction, RequestContext } from '../model/action.js';
import type { Claim } from '../model/claim.js';
import type { Fault, Instance, InstancePatch } from '../model/instance.js';
import { idSchema } from '../model/names.js';
import type { VmState } from '../model/states.js';
import { isActionAllowed, outcomeOf } from '../model/transitions.js';
import { parseInput } from '../model/validation.js';
import { callAbortState, supportsPowerControl } from '../ports/driver.js';
import type { Selection } from '../ports/scheduler.js';
import type { StoreWrite } from '../ports/unit-of-work.js';
import { TaskControl } from './deadline.js';
import { type EngineContext, faultOf } from './engine-context.js';
import { placeExisting } from './instance-placement.js';
import { MigrationLog } from './migration-log.js';
import { devicesOnHost } from './move-devices.js';
import { stableStateFor } from './power-sync.js';

/** Options of `compute.evacuate`. */
export interface EvacuateOptions {
  /** Evacuate only these instances of the host (Nova's `host-evacuate --servers`); default all. */
  readonly onlyInstanceIds?: readonly string[];
  /** Who asked (recorded on each instance's `evacuate` action). */
  readonly request?: RequestContext;
}

/** What became of one instance of an evacuated host. */
export interface EvacuatedInstance {
  readonly instanceId: string;
  /**
   * `evacuated`: rebuilt on `toHostId`; `failed`: the evacuate action ran and ended in error
   * (`fault`; NoValidHost keeps it on the down host); `skipped`: not attempted (state refused,
   * another task holds it, not on this host), `fault` says why.
   */
  readonly result: 'evacuated' | 'failed' | 'skipped';
  readonly fromHostId: string;
  /** The host the record names now. */
  readonly hostId: string | null;
  readonly vmState: VmState;
  readonly fault: Fault | null;
}

/** Report of `compute.evacuate`: one entry per instance considered. */
export interface EvacuateReport {
  readonly hostId: string;
  readonly instances: readonly EvacuatedInstance[];
}

const evacuateOptionsSchema = z.strictObject({
  hostId: idSchema,
  onlyInstanceIds: z.array(z.string().min(1).max(255)).max(10_000).optional(),
});

/**
 * Evacuate (Nova's `evacuate`, per instance of a down host): each instance in ACTIVE, STOPPED or
 * ERROR with no task takes task `rebuilding` and an `evacuate` action in one unit; it is placed
 * with the filters and claims of a create (its flavor, image, zone, hints and server group, under
 * the group's lock), spawned from its image on the chosen host (powered off again if it was
 * stopped), then one unit moves the record there, sets its stable state and ends the action; the
 * down host's claim is released right after (a crash in between leaves a claim for an instance
 * placed elsewhere, which reconciliation releases). NoValidHost or a failed spawn leaves the
 * record on the down host with a fault and the action in error (a failed spawn also sets ERROR,
 * as a failed rebuild does); a later evacuate may retry. The guest left on the down host is
 * destroyed by reconciliation when the host's driver answers again (Nova's
 * `_destroy_evacuated_instances`).
 */
export class EvacuateFlow {
  private readonly log: MigrationLog;

  constructor(private readonly ctx: EngineContext) {
    this.log = new MigrationLog(ctx);
  }

  async evacuate(hostId: string, options: EvacuateOptions = {}): Promise<EvacuateReport> {
    if (this.ctx.closed) throw new EngineClosedError('evacuate');
    const parsed = parseInput(evacuateOptionsSchema, {
      hostId,
      ...(options.onlyInstanceIds !== undefined ? { onlyInstanceIds: options.onlyInstanceIds } : {}),
    });
    const { deps } = this.ctx;
    const host = await deps.hosts.get(parsed.hostId);
    if (!host) throw new NotFoundError('host', parsed.hostId, 'hostId');
    if (host.up) throw new HostNotDownError(host.id, host.up, host.enabled);
    const onHost = await deps.instances.list({ hostId: host.id });
    const wanted = parsed.onlyInstanceIds ? new Set(parsed.onlyInstanceIds) : undefined;
    const chosen = wanted ? onHost.filter((i) => wanted.has(i.id)) : onHost;
    const entries: Array<Promise<EvacuatedInstance>> = chosen.map((i) =>
      this.evacuateOne(i, host.id, options.request),
    );
    if (wanted) {
      const found = new Set(chosen.map((i) => i.id));
      for (const id of wanted) {
        if (found.has(id)) continue;
        const now = await deps.instances.get(id);
        const fault = faultOf(new NotFoundError('instance', id, 'onlyInstanceIds'), this.ctx.now(), {
          onHost: host.id,
        });
        entries.push(
          Promise.resolve({
            instanceId: id,
            result: 'skipped',
            fromHostId: host.id,
            hostId: now?.hostId ?? null,
            vmState: now?.vmState ?? 'deleted',
            fault,
          }),
        );
      }
    }
    return { hostId: host.id, instances: await Promise.all(entries) };
  }

  /**
   * A host was marked down: its instances without a task show power state `nostate` (Nova shows
   * NOSTATE while the compute service is down); their vm state is kept.
   */
  async hostWentDown(hostId: string): Promise<void> {
    for (const instance of await this.ctx.deps.instances.list({ hostId })) {
      await this.patchIdle(instance, () => ({ powerState: 'nostate' }));
    }
  }

  /**
   * A host was marked up again: instances it showed as `nostate` take the power state its driver
   * reports (a guest gone is left to reconciliation, which puts it in ERROR with a fault).
   */
  async hostCameBack(hostId: string): Promise<void> {
    const { deps } = this.ctx;
    if (!deps.registry.has(hostId)) return;
    for (const instance of await deps.instances.list({ hostId })) {
      if (instance.powerState !== 'nostate' || instance.taskState !== null) continue;
      const observed = await this.ctx
        .callDriver('read', { operation: 'getPowerState', instanceId: instance.id, hostId }, undefined, (d) =>
          d.getPowerState(instance),
        )
        .catch(() => 'nostate' as const);
      if (observed === 'nostate') continue;
      await this.patchIdle(instance, (i) => ({
        powerState: observed,
        vmState: stableStateFor(i.vmState, observed),
      }));
    }
  }

  /** Applies a patch to an instance no task holds, retrying lost updates a few times. */
  private async patchIdle(start: Instance, patch: (i: Instance) => InstancePatch): Promise<void> {
    let current: Instance | undefined = start;
    for (let attempt = 0; attempt < 5 && current; attempt++) {
      if (current.taskState !== null || this.ctx.builds.has(current.id)) return;
      const change = patch(current);
      if (Object.entries(change).every(([k, v]) => current![k as keyof Instance] === v)) return;
      try {
        await this.ctx.apply(current, change);
        return;
      } catch (e) {
        if (e instanceof NotFoundError) return;
        if (!(e instanceof RevisionConflictError)) throw e;
        current = await this.ctx.deps.instances.get(start.id);
      }
    }
  }

  private skipped(instance: Instance, fromHostId: string, fault: Fault): EvacuatedInstance {
    return {
      instanceId: instance.id,
      result: 'skipped',
      fromHostId,
      hostId: instance.hostId,
      vmState: instance.vmState,
      fault,
    };
  }

  private refused(instance: Instance, fromHostId: string): EvacuatedInstance {
    const e = new InvalidStateError({
      instanceId: instance.id,
      action: 'evacuate',
      vmState: instance.vmState,
      taskState: instance.taskState,
      powerState: instance.powerState,
    });
    return this.skipped(instance, fromHostId, faultOf(e, this.ctx.now()));
  }

  private async evacuateOne(
    first: Instance,
    fromHostId: string,
    request: RequestContext | undefined,
  ): Promise<EvacuatedInstance> {
    const { deps } = this.ctx;
    const id = first.id;
    if (first.hostId !== fromHostId || !isActionAllowed('evacuate', first))
      return this.refused(first, fromHostId);
    // one task at a time: a task of this process (another evacuate, a build, a delete) holds it
    if (this.ctx.builds.has(id) || this.ctx.deletes.has(id)) return this.refused(first, fromHostId);
    const task = new TaskControl();
    this.ctx.builds.set(id, task);
    try {
      const started = this.ctx.actionStart(id, 'evacuate', request);
      let working: Instance;
      try {
        working = await this.ctx.apply(first, { taskState: 'rebuilding' }, [], started.writes);
      } catch (e) {
        if (!(e instanceof RevisionConflictError) && !(e instanceof NotFoundError)) throw e;
        // another process or task changed it first: evacuate only what is still here and idle
        const fresh = await deps.instances.get(id);
        if (!fresh) return this.skipped(first, fromHostId, faultOf(e, this.ctx.now()));
        return this.refused(fresh, fromHostId);
      }
      return await this.run(working, first.vmState, fromHostId, started.action, task);
    } finally {
      if (this.ctx.builds.get(id) === task) this.ctx.builds.delete(id);
    }
  }

  /**
   * Evacuates one instance whose task this process took, with its migration record (kind
   * `evacuation`, as Nova's): `pre-migrating` with no destination, the destination once
   * scheduled, then `done`, or `failed` with the fault's message.
   */
  private async run(
    working: Instance,
    from: VmState,
    fromHostId: string,
    action: InstanceAction,
    task: TaskControl,
  ): Promise<EvacuatedInstance> {
    let migration = await this.log.begin(working, 'evacuation', {
      destHostId: null,
      newFlavorId: working.flavor.id,
      status: 'pre-migrating',
    });
    const result = await this.move(working, from, fromHostId, action, task, async (toHostId) => {
      migration = await this.log.update(migration, { destHostId: toHostId });
    });
    await this.log.update(
      migration,
      result.result === 'evacuated'
        ? { status: 'done' }
        : { status: 'failed', error: result.fault?.message ?? 'evacuation failed' },
    );
    return result;
  }

  private async move(
    working: Instance,
    from: VmState,
    fromHostId: string,
    action: InstanceAction,
    task: TaskControl,
    scheduledOn: (hostId: string) => Promise<void>,
  ): Promise<EvacuatedInstance> {
    const { deps } = this.ctx;
    const id = working.id;
    const image = await deps.images.get(working.imageId);
    if (!image) {
      return this.fail(
        working,
        action,
        fromHostId,
        faultOf(new NotFoundError('image', working.imageId), this.ctx.now()),
      );
    }
    const oldClaims = (await deps.claims.list({ instanceId: id })).filter((c) => c.hostId === fromHostId);
    let selection: Selection;
    try {
      selection = await placeExisting(this.ctx, working, {
        flavor: working.flavor,
        image,
        requestId: action.requestId,
        excludedHostIds: [fromHostId],
      });
    } catch (e) {
      return this.fail(working, action, fromHostId, faultOf(e, this.ctx.now(), { hostId: fromHostId }));
    }
    const toHostId = selection.hostId;
    const claim: Claim = selection.claim;
    const zone = selection.availabilityZone ?? (await deps.hosts.get(toHostId))?.availabilityZone;
    const target: Instance = {
      ...working,
      hostId: toHostId,
      availabilityZone: zone ?? working.availabilityZone,
    };
    const scheduled: StoreWrite = {
      kind: 'event',
      event: {
        type: 'instance.scheduled',
        instanceId: id,
        at: this.ctx.now(),
        hostId: toHostId,
        attempt: 1,
        alternateHostIds: [...selection.alternateHostIds],
      },
    };
    await this.ctx.commit([scheduled]).catch(() => undefined);
    await scheduledOn(toHostId);
    try {
      await this.ctx.callDriver(
        'spawn',
        { operation: 'spawn', instanceId: id, hostId: toHostId },
        task,
        async (d, call) =>
          d.spawn({
            instance: target,
            flavor: working.flavor,
            image,
            images: deps.images,
            ...(await devicesOnHost(this.ctx, target, toHostId)),
            get signal() {
              return call.signal;
            },
            [callAbortState]: () => call[callAbortState]?.(),
          }),
      );
      const driver = deps.registry.driverFor(toHostId);
      if (from === 'stopped' && supportsPowerControl(driver)) {
        const timeoutMs = deps.options.powerOffTimeoutMs;
        await this.ctx.callDriver(
          'power',
          { operation: 'powerOff', instanceId: id, hostId: toHostId },
          task,
          (_, call) =>
            driver.powerOff(target, {
              timeoutMs,
              get signal() {
                return call.signal;
              },
              [callAbortState]: () => call[callAbortState]?.(),
            }),
        );
      }
    } catch (e) {
      deps.scheduler.buildFinished?.(claim);
      const cleaned = await this.cleanup(target, toHostId);
      await deps.scheduler.release(claim);
      const aborted = task.aborted && !(task.reason instanceof DeadlineExceededError);
      const fault = faultOf(e, this.ctx.now(), {
        hostId: toHostId,
        ...(cleaned ? {} : { guestLeft: true }),
      });
      if (aborted) return this.aborted(working, action, fromHostId, fault);
      return this.fail(working, action, fromHostId, fault, 'error', [
        this.ctx.faultEvent(id, toHostId, fault),
      ]);
    }
    const outcome = outcomeOf('evacuate', from);
    const ended = this.ctx.actionEnd(action, null);
    // the record moves, takes its stable state and the action ends in one unit
    const moved = await this.ctx.applyAsTaskOwner(
      working,
      'rebuilding',
      {
        hostId: toHostId,
        availabilityZone: target.availabilityZone,
        vmState: outcome.vmState,
        powerState: outcome.powerState,
        taskState: null,
        fault: null,
        launchedAt: this.ctx.now(),
      },
      ended.writes,
    );
    deps.scheduler.buildFinished?.(claim);
    if (!moved) {
      // a delete took the instance over: what was built on the new host goes
      await this.cleanup(target, toHostId);
      await deps.scheduler.release(claim);
      return this.aborted(
        working,
        action,
        fromHostId,
        faultOf(new Error('evacuate stopped by a delete'), this.ctx.now()),
      );
    }
    // the down host's claim goes once the record names the new host (reconciliation releases a
    // claim of an instance placed elsewhere, should this process die in between)
    for (const c of oldClaims) await deps.scheduler.release(c).catch(() => undefined);
    return {
      instanceId: id,
      result: 'evacuated',
      fromHostId,
      hostId: moved.hostId,
      vmState: moved.vmState,
      fault: null,
    };
  }

  /** Destroys what the evacuation built on `hostId`; resolves whether it is gone. */
  private async cleanup(target: Instance, hostId: string): Promise<boolean> {
    try {
      await this.ctx.callDriver(
        'destroy',
        { operation: 'destroy', instanceId: target.id, hostId },
        undefined,
        (d, call) => d.destroy(target, call),
      );
      return true;
    } catch (e) {
      await this.ctx.recordQuietly(
        this.faultEventOf(target.id, hostId, faultOf(e, this.ctx.now(), { cleanup: true })),
      );
      return false;
    }
  }

  private faultEventOf(instanceId: string, hostId: string, fault: Fault) {
    return { type: 'instance.fault' as const, instanceId, at: fault.at, fault, hostId };
  }

  /**
   * The evacuation failed: the task clears, the record stays on the down host with the fault
   * (vmState kept, or `error`), the action ends in error; one unit.
   */
  private async fail(
    working: Instance,
    action: InstanceAction,
    fromHostId: string,
    fault: Fault,
    vmState: VmState = working.vmState,
    extra: readonly StoreWrite[] = [this.ctx.faultEvent(working.id, fromHostId, fault)],
  ): Promise<EvacuatedInstance> {
    const ended = this.ctx.actionEnd(action, fault);
    const failed = await this.ctx.applyAsTaskOwner(
      working,
      'rebuilding',
      { taskState: null, vmState, fault },
      [...extra, ...ended.writes],
    );
    if (!failed) return this.aborted(working, action, fromHostId, fault);
    return {
      instanceId: working.id,
      result: 'failed',
      fromHostId,
      hostId: failed.hostId,
      vmState: failed.vmState,
      fault,
    };
  }

  /** A delete took the instance over: the action ends with it; the delete finishes the instance. */
  private async aborted(
    working: Instance,
    action: InstanceAction,
    fromHostId: string,
    fault: Fault,
  ): Promise<EvacuatedInstance> {
    const stopped: Fault = { ...fault, code: ErrorCode.BuildAborted };
    await this.ctx.finishAction(action, stopped).catch(() => undefined);
    await this.ctx.deletes.get(working.id)?.catch(() => undefined);
    const now = await this.ctx.deps.instances.get(working.id);
    return {
      instanceId: working.id,
      result: 'failed',
      fromHostId,
      hostId: now?.hostId ?? working.hostId,
      vmState: now?.vmState ?? 'deleted',
      fault: stopped,
    };
  }
}
