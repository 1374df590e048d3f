import {
  DriverError,
  InvalidStateError,
  NotFoundError,
  NovaError,
  RevisionConflictError,
} from '../errors.js';
import type { InstanceAction, RequestContext, TaskActionName } from '../model/action.js';
import type { Fault, Instance, InstancePatch } from '../model/instance.js';
import type { QuotaDeltas } from '../model/quota.js';
import type { TaskState } from '../model/states.js';
import { assertActionAllowed, transitions } from '../model/transitions.js';
import { callAbortState, type DriverCallOptions } from '../ports/driver.js';
import type { StoreWrite } from '../ports/unit-of-work.js';
import { TaskControl } from './deadline.js';
import type { EngineContext } from './engine-context.js';
import { assertNotLocked } from './lock-flow.js';

/** An action's task, taken: the instance as written, the action record and the task's control. */
export interface TakenTask {
  readonly working: Instance;
  readonly record: InstanceAction;
  readonly task: TaskControl;
  /** Forgets the task in this process (call once the flow ends, whatever happened). */
  readonly done: () => void;
}

/**
 * Reads the instance and refuses `action` when its state, a running task or a lock forbids it.
 * @throws NotFoundError; InvalidStateError; InstanceLockedError
 */
export async function instanceFor(
  ctx: EngineContext,
  id: string,
  action: TaskActionName,
  request: RequestContext | undefined,
): Promise<Instance> {
  const instance = await ctx.deps.instances.get(id);
  if (!instance) throw new NotFoundError('instance', id, 'id');
  assertActionAllowed(action, instance);
  assertNotLocked(instance, action, request);
  return instance;
}

/** The conflict error of `action` on `instance` as it stands. */
export function conflictOf(action: TaskActionName, i: Instance, cause?: unknown): InvalidStateError {
  return new InvalidStateError(
    { instanceId: i.id, action, vmState: i.vmState, taskState: i.taskState, powerState: i.powerState },
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Takes `action`'s task (compare-and-set: one task at a time) and starts its action record, in one
 * unit with `patch`. The task is known to this process before it is written, so no reconciliation
 * pass takes it for a leftover.
 * @throws InvalidStateError when another writer changed the instance first
 */
export async function takeTask(
  ctx: EngineContext,
  instance: Instance,
  action: TaskActionName,
  request: RequestContext | undefined,
  patch: InstancePatch = {},
): Promise<TakenTask> {
  const started = ctx.actionStart(instance.id, action, request);
  const task = new TaskControl();
  const ours = !ctx.builds.has(instance.id);
  if (ours) ctx.builds.set(instance.id, task);
  const done = () => {
    if (ours && ctx.builds.get(instance.id) === task) ctx.builds.delete(instance.id);
  };
  try {
    const working = await ctx.apply(
      instance,
      { taskState: transitions[action].task, ...patch },
      [],
      started.writes,
    );
    return { working, record: started.action, task, done };
  } catch (e) {
    done();
    if (!(e instanceof RevisionConflictError)) throw e;
    const fresh = await ctx.deps.instances.get(instance.id);
    if (!fresh) throw new NotFoundError('instance', instance.id, 'id');
    throw conflictOf(action, fresh, e);
  }
}

/**
 * Ends the task `task` with `patch` (task cleared) and the action's end (`fault` or success) in one
 * unit, with `extra` writes. Resolves the new record, or `undefined` when a delete took it over
 * (the action is then ended on its own).
 */
export async function endTask(
  ctx: EngineContext,
  current: Instance,
  task: TaskState,
  record: InstanceAction,
  patch: InstancePatch,
  fault: Fault | null,
  extra: readonly StoreWrite[] = [],
): Promise<Instance | undefined> {
  const ended = ctx.actionEnd(record, fault);
  const writes = fault
    ? [ctx.faultEvent(current.id, current.hostId, fault), ...extra, ...ended.writes]
    : [...extra, ...ended.writes];
  const done = await ctx.applyAsTaskOwner(
    current,
    task,
    { taskState: null, ...(fault ? { fault } : { fault: null }), ...patch },
    writes,
  );
  if (!done) await ctx.finishAction(record, fault).catch(() => undefined);
  return done;
}

/** The error a flow rethrows for a failed driver call: typed errors as they are, others wrapped. */
export function driverFailure(
  e: unknown,
  what: { driver: string; operation: string; instanceId: string; hostId: string },
  message: string,
): Error {
  if (e instanceof NovaError) return e;
  return new DriverError(what, message, { cause: e });
}

const positive = (n: number) => Math.max(0, n);

/** `a - b` per quota resource, never below zero (instances unchanged). */
export function quotaExcess(
  a: { vcpus: number; ramMb: number },
  b: { vcpus: number; ramMb: number },
): QuotaDeltas {
  return { instances: 0, cores: positive(a.vcpus - b.vcpus), ramMb: positive(a.ramMb - b.ramMb) };
}

const isZero = (d: QuotaDeltas) => d.instances === 0 && d.cores === 0 && d.ramMb === 0;

/**
 * Runs `write` (a unit of work that changes what the instance counts for) with the quota change it
 * implies: in the unit itself when the unit applies the engine's quota, else reserved before and
 * committed after (`consume`) or released after (`release`). `write` resolving `undefined` means
 * nothing was written (a delete took the instance over): a reservation is rolled back then.
 * @throws QuotaExceededError (nothing written) for a consume over the limit
 */
export async function withQuota<T>(
  ctx: EngineContext,
  projectId: string,
  deltas: QuotaDeltas,
  kind: 'consume' | 'release',
  write: (writes: StoreWrite[]) => Promise<T | undefined>,
): Promise<T | undefined> {
  if (isZero(deltas)) return write([]);
  if (ctx.quotaInUnit) return write([{ kind: `quota.${kind}`, projectId, deltas }]);
  const { quota } = ctx.deps;
  if (kind === 'release') {
    const written = await write([]);
    if (written !== undefined) await quota.release(projectId, deltas).catch(() => undefined);
    return written;
  }
  const reservation = await quota.reserve(projectId, deltas);
  let written: T | undefined;
  try {
    written = await write([]);
  } catch (e) {
    await quota.rollback(reservation).catch(() => undefined);
    throw e;
  }
  if (written === undefined) await quota.rollback(reservation).catch(() => undefined);
  else await quota.commit(reservation);
  return written;
}

/** Call options with the task's signal and cheap abort check, as the driver ports take them. */
export function callOf(call: DriverCallOptions): DriverCallOptions {
  return {
    get signal() {
      return call.signal;
    },
    [callAbortState]: () => call[callAbortState]?.(),
  };
}
