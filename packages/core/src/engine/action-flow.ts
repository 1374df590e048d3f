import {
  CapabilityUnsupportedError,
  DriverError,
  EngineClosedError,
  InvalidStateError,
  NotFoundError,
  NovaError,
  RevisionConflictError,
} from '../errors.js';
import type { RequestContext, TaskActionName } from '../model/action.js';
import type { Instance, InstancePatch } from '../model/instance.js';
import { assertActionAllowed, outcomeOf, transitions } from '../model/transitions.js';
import type { ComputeDriver, DriverCallOptions } from '../ports/driver.js';
import { TaskControl } from './deadline.js';
import { type EngineContext, faultOf } from './engine-context.js';
import type { DriverTimeouts } from './engine-options.js';
import { assertNotLocked } from './lock-flow.js';

/**
 * An operation on the instance's driver, run while the action's task is held. `signal` aborts at
 * the operation's deadline or when a delete takes the instance over.
 */
export type DriverOperation<D extends ComputeDriver> = (
  driver: D,
  instance: Instance,
  call: DriverCallOptions,
) => Promise<void>;

/** Capability check of an action against a driver: the type guard of the optional interface. */
export type CapabilityCheck<D extends ComputeDriver> = (driver: ComputeDriver) => driver is D;

/**
 * A patch written with the stable state after success, or one computed from the instance as it
 * is when that write is made (again on each lost update).
 */
export type ExtraPatch = InstancePatch | ((current: Instance) => InstancePatch);

/** How {@link ActionFlow.runChecked} runs an action. */
export interface RunOptions {
  readonly request?: RequestContext;
  /** Written with the stable state after success. */
  readonly extraPatch?: ExtraPatch;
  /**
   * Written with the fault when the operation fails (or its deadline passes); gets the instance as
   * it is when that write is made (again on each lost update).
   */
  readonly failurePatch?: (current: Instance) => InstancePatch;
  /**
   * The operation's deadline (default `power`): past it the task ends with a
   * `DeadlineExceededError` fault, and the operation's signal aborts, while the operation itself
   * may still run (a driver that does not answer its signal); it must then undo its own effects.
   */
  readonly deadline?: keyof DriverTimeouts;
}

/** What {@link ActionFlow.precheck} found: the instance as read, its host and that host's driver. */
export interface CheckedAction<D extends ComputeDriver> {
  readonly action: TaskActionName;
  readonly instance: Instance;
  readonly hostId: string;
  readonly driver: D;
}

/**
 * Runs one lifecycle action (start, stop, reboot, pause, ...) by the transition table: checks the
 * state and the driver's capability, takes the task (compare-and-set, so one task at a time),
 * calls the driver, then settles the stable state. A driver failure clears the task, records a
 * fault and rethrows as {@link DriverError}.
 */
export class ActionFlow {
  constructor(private readonly ctx: EngineContext) {}

  /**
   * The checks made before a task is taken, without changing anything: the engine is open, the
   * instance exists, its state allows `action`, it is not locked against this caller, it is on a
   * host, and that host's driver passes `supports`. A flow that must look at the instance before it
   * asks an adapter for something (an attach) calls this first and hands the result to
   * {@link runChecked}.
   */
  async precheck<D extends ComputeDriver>(
    id: string,
    action: TaskActionName,
    supports: CapabilityCheck<D>,
    request?: RequestContext,
  ): Promise<CheckedAction<D>> {
    if (this.ctx.closed) throw new EngineClosedError(action);
    const instance = await this.ctx.deps.instances.get(id);
    if (!instance) throw new NotFoundError('instance', id, 'id');
    assertActionAllowed(action, instance);
    assertNotLocked(instance, action, request);
    const hostId = instance.hostId;
    if (!hostId) throw this.conflict(action, instance);
    const driver = this.ctx.deps.registry.driverFor(hostId);
    if (!supports(driver)) {
      throw new CapabilityUnsupportedError(transitions[action].capability ?? action, driver.kind, hostId);
    }
    return { action, instance, hostId, driver };
  }

  /**
   * Runs `action` on instance `id`. `extraPatch` is written with the stable state after success; a
   * function is called once the driver is done, with the instance as it is then.
   */
  async run<D extends ComputeDriver>(
    id: string,
    action: TaskActionName,
    supports: CapabilityCheck<D>,
    operation: DriverOperation<D>,
    request?: RequestContext,
    extraPatch?: ExtraPatch,
    deadline: keyof DriverTimeouts = 'power',
  ): Promise<Instance> {
    const checked = await this.precheck(id, action, supports, request);
    return this.runChecked(checked, operation, {
      ...(request ? { request } : {}),
      ...(extraPatch ? { extraPatch } : {}),
      deadline,
    });
  }

  /** {@link run} from the result of {@link precheck} (the instance is not read again). */
  async runChecked<D extends ComputeDriver>(
    checked: CheckedAction<D>,
    operation: DriverOperation<D>,
    options: RunOptions = {},
  ): Promise<Instance> {
    const { request, extraPatch, failurePatch, deadline = 'power' } = options;
    const { deps } = this.ctx;
    const { action, instance, driver } = checked;
    const id = instance.id;
    const row = transitions[action];
    // the task is taken and the action recorded in one unit
    const started = this.ctx.actionStart(id, action, request);
    const task = new TaskControl();
    // known before the task is written, so no reconciliation pass takes it for a leftover
    const ours = !this.ctx.builds.has(id);
    if (ours) this.ctx.builds.set(id, task);
    let working: Instance;
    try {
      working = await this.ctx.apply(instance, { taskState: row.task }, [], started.writes);
    } catch (e) {
      if (ours) this.ctx.builds.delete(id);
      if (!(e instanceof RevisionConflictError)) throw e;
      const fresh = await deps.instances.get(id);
      if (!fresh) throw new NotFoundError('instance', id, 'id');
      throw this.conflict(action, fresh, e);
    }
    const record = started.action;
    try {
      await this.ctx.callDriver(
        deadline,
        { operation: action, instanceId: id, hostId: checked.hostId },
        task,
        (_, call) => operation(driver, working, call),
      );
    } catch (e) {
      if (ours) this.ctx.builds.delete(id);
      const fault = faultOf(e, this.ctx.now());
      const fresh = (await deps.instances.get(id)) ?? working;
      const ended = this.ctx.actionEnd(record, fault);
      const cleared = await this.ctx.applyAsTaskOwner(
        fresh,
        row.task,
        (current) => ({ taskState: null, fault, ...failurePatch?.(current) }),
        [this.ctx.faultEvent(id, checked.hostId, fault), ...ended.writes],
      );
      if (!cleared) await this.ctx.finishAction(record, fault).catch(() => undefined);
      if (e instanceof NovaError) throw e;
      throw new DriverError(
        { driver: driver.kind, operation: action, instanceId: id, hostId: checked.hostId },
        fault.message,
        { cause: e },
      );
    }
    if (ours) this.ctx.builds.delete(id);
    const outcome = outcomeOf(action, instance.vmState);
    const ended = this.ctx.actionEnd(record, null);
    const done = await this.ctx.applyAsTaskOwner(
      working,
      row.task,
      (current) => ({
        vmState: outcome.vmState,
        powerState: outcome.powerState,
        taskState: null,
        fault: null,
        ...(typeof extraPatch === 'function' ? extraPatch(current) : extraPatch),
      }),
      ended.writes,
    );
    if (!done) await this.ctx.finishAction(record, null).catch(() => undefined);
    return done ?? (await deps.instances.get(id)) ?? working;
  }

  private conflict(action: TaskActionName, i: Instance, cause?: unknown): InvalidStateError {
    return new InvalidStateError(
      { instanceId: i.id, action, vmState: i.vmState, taskState: i.taskState, powerState: i.powerState },
      cause === undefined ? undefined : { cause },
    );
  }
}
