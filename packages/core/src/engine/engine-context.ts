import { map, Subject } from 'rxjs';
import { DriverError, ErrorCode, NotFoundError, NovaError, RevisionConflictError } from '../errors.js';
import type {
  InstanceAction,
  InstanceActionName,
  InstantActionName,
  RequestContext,
} from '../model/action.js';
import { newId } from '../model/ids.js';
import type { Fault, Instance, InstancePatch } from '../model/instance.js';
import type { QuotaDeltas } from '../model/quota.js';
import type { TaskState } from '../model/states.js';
import type { Clock } from '../ports/clock.js';
import type { ComputeDriver, DriverCallOptions } from '../ports/driver.js';
import type { ImageService } from '../ports/image-service.js';
import type { NetworkAdapter } from '../ports/network.js';
import type { QuotaEngine } from '../ports/quota.js';
import type { Scheduler } from '../ports/scheduler.js';
import type {
  ActionStore,
  ClaimStore,
  FlavorStore,
  HostStore,
  InstanceStore,
  MigrationStore,
  ServerGroupStore,
} from '../ports/stores.js';
import type { EventLog, LeaseStore, LoggedEvent, StoreWrite, UnitOfWork } from '../ports/unit-of-work.js';
import type { VolumeAdapter } from '../ports/volume.js';
import { type TaskControl, withDeadline } from './deadline.js';
import type { DriverTimeouts, EngineOptions } from './engine-options.js';
import type { InstanceEvent, InstanceStateEvent } from './events.js';
import type { HostRegistry } from './host-registry.js';
import { KeyedMutex } from './keyed-mutex.js';

/** Every collaborator of the engine, resolved once from DI. */
export interface EngineDeps {
  readonly instances: InstanceStore;
  readonly hosts: HostStore;
  readonly claims: ClaimStore;
  readonly actions: ActionStore;
  readonly flavors: FlavorStore;
  readonly groups: ServerGroupStore;
  readonly unit: UnitOfWork;
  readonly eventLog: EventLog;
  readonly leases: LeaseStore;
  readonly migrations: MigrationStore;
  readonly scheduler: Scheduler;
  readonly quota: QuotaEngine;
  readonly images: ImageService;
  readonly network: NetworkAdapter;
  readonly volumes: VolumeAdapter;
  readonly clock: Clock;
  readonly registry: HostRegistry;
  readonly options: EngineOptions;
}

/**
 * Quota amounts an instance counts for: its flavor's, or during a resize (a `move` context) the
 * bigger of the old and the new flavor per resource, as Nova counts a resize in progress.
 */
export function quotaDeltasOf(instance: Pick<Instance, 'flavor' | 'move'>, count = 1): QuotaDeltas {
  const move = instance.move;
  const cores = move ? Math.max(move.oldFlavor.vcpus, move.newFlavor.vcpus) : instance.flavor.vcpus;
  const ramMb = move ? Math.max(move.oldFlavor.ramMb, move.newFlavor.ramMb) : instance.flavor.ramMb;
  return { instances: count, cores: cores * count, ramMb: ramMb * count };
}

/** Converts any thrown value into a fault record naming its cause. */
export function faultOf(error: unknown, at: number, extra?: Record<string, unknown>): Fault {
  if (error instanceof NovaError) {
    const cause = error.cause instanceof Error ? { cause: error.cause.message } : {};
    return {
      code: error.code,
      message: error.message,
      at,
      details: { ...error.details, ...cause, ...extra },
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: ErrorCode.Unexpected, message, at, ...(extra ? { details: extra } : {}) };
}

/** Whether a build that failed with `error` may move to another host. */
export function reschedulable(error: unknown): boolean {
  if (error instanceof DriverError) return error.reschedule;
  if (error instanceof NovaError) return error.code !== ErrorCode.ImageChecksum;
  return true;
}

/** An action record and the writes that record it (start or end), to put in a unit of work. */
export interface ActionStep {
  readonly action: InstanceAction;
  readonly writes: StoreWrite[];
}

/**
 * Shared machinery of the lifecycle flows: units of work whose events are logged and then
 * published, action history, per-instance task signals, driver calls with deadlines. One per
 * engine.
 */
export class EngineContext {
  /** Logged events, published once their unit committed. */
  readonly logged = new Subject<LoggedEvent>();
  /** Every event, in commit order. */
  readonly events$ = this.logged.pipe(map((l) => l.event));
  /** Tasks (builds, actions) running in this process, by instance id: a delete aborts them. */
  readonly builds = new Map<string, TaskControl>();
  /**
   * Attaches running in this process, by instance id (how many): counted until each has ended,
   * also past its task's deadline while the driver's plug has not answered, so the reconciliation
   * leaves their `attaching` marks alone.
   */
  readonly attachesInFlight = new Map<string, number>();
  /** Deletes in progress, by instance id (a second delete joins the first). */
  readonly deletes = new Map<string, Promise<void>>();
  /**
   * Placements of one server group's members (creates, reschedules, evacuations) are serialised
   * per group, so hard group policies hold.
   */
  readonly groupLocks = new KeyedMutex();
  /** This engine process, as lease owner. */
  readonly engineId = newId();
  /** Set by `close()`: new work is refused. */
  closed = false;
  /**
   * Quota is consumed in admission's unit and released in removal's (the unit of work applies
   * the engine's quota engine); otherwise reserved around admission's unit and released after
   * removal's.
   */
  readonly quotaInUnit: boolean;

  constructor(readonly deps: EngineDeps) {
    this.quotaInUnit = deps.unit.quota !== undefined && deps.unit.quota === deps.quota;
  }

  now(): number {
    return this.deps.clock.now();
  }

  /** Commits a unit of work and publishes its logged events in order. */
  async commit(writes: readonly StoreWrite[]): Promise<void> {
    const logged = await this.deps.unit.commit(writes);
    if (this.logged.observed) for (const l of logged) this.logged.next(l);
  }

  /** Logs and publishes events that report no store change (faults, placements, orphans). */
  async record(...events: InstanceEvent[]): Promise<void> {
    await this.commit(events.map((event) => ({ kind: 'event', event })));
  }

  /** Like {@link EngineContext.record}, for paths that must not fail because the log did. */
  recordQuietly(...events: InstanceEvent[]): Promise<void> {
    return this.record(...events).catch(() => undefined);
  }

  /**
   * Compare-and-set update from a known snapshot, in one unit with the state event when a state
   * changed, `lead` writes before and `extra` writes after.
   * @throws RevisionConflictError / NotFoundError from the store (nothing of the unit written).
   */
  async apply(
    instance: Instance,
    patch: InstancePatch,
    extra: readonly StoreWrite[] = [],
    lead: readonly StoreWrite[] = [],
  ): Promise<Instance> {
    const next: Instance = { ...instance, ...patch, revision: instance.revision + 1, updatedAt: this.now() };
    const writes: StoreWrite[] = [
      ...lead,
      { kind: 'instance.update', instance: next, expectedRevision: instance.revision },
    ];
    const state = stateEvent(instance, next);
    if (state) writes.push({ kind: 'event', event: state });
    for (const w of extra) writes.push(w);
    await this.commit(writes);
    return next;
  }

  /**
   * Update made by the owner of task `task`: retries on revision conflicts caused by others
   * (e.g. power-state sync) as long as the stored task is still `task`. A `patch` function is
   * computed from the instance each try writes over, so a patch made from the instance's lists
   * (volumes, ports) never puts back what another writer changed meanwhile. Returns `undefined`
   * (and writes nothing) when the instance is gone or another task (a delete) took it over.
   */
  async applyAsTaskOwner(
    instance: Instance,
    task: TaskState | null,
    patch: InstancePatch | ((current: Instance) => InstancePatch),
    extra: readonly StoreWrite[] = [],
    lead: readonly StoreWrite[] = [],
  ): Promise<Instance | undefined> {
    let current = instance;
    for (let attempt = 0; attempt < 20; attempt++) {
      if (current.taskState !== task) return undefined;
      try {
        return await this.apply(current, typeof patch === 'function' ? patch(current) : patch, extra, lead);
      } catch (e) {
        if (e instanceof NotFoundError) return undefined;
        if (!(e instanceof RevisionConflictError)) throw e;
        const fresh = await this.deps.instances.get(instance.id);
        if (!fresh) return undefined;
        current = fresh;
      }
    }
    throw new RevisionConflictError('instance', instance.id, current.revision, -1);
  }

  /** An action's start record and the writes that record it. */
  actionStart(instanceId: string, action: InstanceActionName, ctx: RequestContext | undefined): ActionStep {
    const id = newId();
    const record: InstanceAction = {
      id,
      instanceId,
      action,
      // an action asked for without a request id is its own request
      requestId: ctx?.requestId ?? id,
      userId: ctx?.userId ?? null,
      projectId: ctx?.projectId ?? null,
      startedAt: this.now(),
      finishedAt: null,
      result: 'pending',
      fault: null,
    };
    return { action: record, writes: [{ kind: 'action.start', action: record }, actionEvent(record)] };
  }

  /** How an action ended, and the writes that record it. */
  actionEnd(action: InstanceAction, fault: Fault | null): ActionStep {
    const ended: InstanceAction = {
      ...action,
      result: fault ? 'error' : 'success',
      finishedAt: this.now(),
      fault,
    };
    return { action: ended, writes: [{ kind: 'action.finish', action: ended }, actionEvent(ended)] };
  }

  /**
   * An instant action (lock, unlock): started and ended successfully at the same instant, its
   * start and end writes meant for the one unit of work that makes its change. It takes no task
   * state, so no pending record is ever left behind by a crash.
   */
  instantAction(instanceId: string, action: InstantActionName, ctx: RequestContext | undefined): ActionStep {
    const started = this.actionStart(instanceId, action, ctx);
    const ended: InstanceAction = {
      ...started.action,
      result: 'success',
      finishedAt: started.action.startedAt,
    };
    return {
      action: ended,
      writes: [...started.writes, { kind: 'action.finish', action: ended }, actionEvent(ended)],
    };
  }

  /** Records how an action ended, in a unit of its own. */
  async finishAction(action: InstanceAction, fault: Fault | null): Promise<void> {
    await this.commit(this.actionEnd(action, fault).writes);
  }

  /** A fault event write. */
  faultEvent(instanceId: string, hostId: string | null, fault: Fault): StoreWrite {
    return { kind: 'event', event: { type: 'instance.fault', instanceId, at: fault.at, fault, hostId } };
  }

  /**
   * Calls a host's driver with a deadline (`timeouts[kind]`) and the task's signal; past the
   * deadline the call's signal aborts and the call rejects with a `DeadlineExceededError`.
   */
  callDriver<T>(
    kind: keyof DriverTimeouts,
    what: { operation: string; instanceId?: string; hostId: string },
    task: TaskControl | undefined,
    call: (driver: ComputeDriver, options: DriverCallOptions) => Promise<T>,
  ): Promise<T> {
    const driver = this.deps.registry.driverFor(what.hostId);
    return withDeadline(what, this.deps.options.timeouts[kind], task, (o) => call(driver, o));
  }
}

/** The state event between two snapshots, or undefined when no state changed. */
export function stateEvent(before: Instance, after: Instance): InstanceStateEvent | undefined {
  if (
    before.vmState === after.vmState &&
    before.taskState === after.taskState &&
    before.powerState === after.powerState
  ) {
    return undefined;
  }
  return {
    type: 'instance.state',
    instanceId: after.id,
    at: after.updatedAt,
    vmState: after.vmState,
    taskState: after.taskState,
    powerState: after.powerState,
    previous: { vmState: before.vmState, taskState: before.taskState, powerState: before.powerState },
    hostId: after.hostId,
  };
}

function actionEvent(action: InstanceAction): StoreWrite {
  return {
    kind: 'event',
    event: {
      type: 'instance.action',
      instanceId: action.instanceId,
      at: action.finishedAt ?? action.startedAt,
      action,
    },
  };
}
