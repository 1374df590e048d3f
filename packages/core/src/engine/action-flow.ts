import {
  CapabilityUnsupportedError,
  DriverError,
  InvalidStateError,
  NotFoundError,
  NovaError,
  RevisionConflictError,
} from '../errors.js';
import type { InstanceActionName, RequestContext } from '../model/action.js';
import type { Instance, InstancePatch } from '../model/instance.js';
import { assertActionAllowed, outcomeOf, transitions } from '../model/transitions.js';
import type { ComputeDriver } from '../ports/driver.js';
import { type EngineContext, faultOf } from './engine-context.js';

/** An operation on the instance's driver, run while the action's task is held. */
export type DriverOperation<D extends ComputeDriver> = (driver: D, instance: Instance) => Promise<void>;

/** Capability check of an action against a driver: the type guard of the optional interface. */
export type CapabilityCheck<D extends ComputeDriver> = (driver: ComputeDriver) => driver is D;

/**
 * Runs one lifecycle action (start, stop, reboot, pause, ...) by the transition table: checks the
 * state and the driver's capability, takes the task (compare-and-set, so one task at a time),
 * calls the driver, then settles the stable state. A driver failure clears the task, records a
 * fault and rethrows as {@link DriverError}.
 */
export class ActionFlow {
  constructor(private readonly ctx: EngineContext) {}

  async run<D extends ComputeDriver>(
    id: string,
    action: InstanceActionName,
    supports: CapabilityCheck<D>,
    operation: DriverOperation<D>,
    request?: RequestContext,
    extraPatch?: InstancePatch,
  ): Promise<Instance> {
    const { deps } = this.ctx;
    const instance = await deps.instances.get(id);
    if (!instance) throw new NotFoundError('instance', id, 'id');
    assertActionAllowed(action, instance);
    if (!instance.hostId) throw this.conflict(action, instance);
    const driver = deps.registry.driverFor(instance.hostId);
    const row = transitions[action];
    if (!supports(driver)) {
      throw new CapabilityUnsupportedError(row.capability ?? action, driver.kind, instance.hostId);
    }
    let working: Instance;
    try {
      working = await this.ctx.apply(instance, { taskState: row.task });
    } catch (e) {
      if (!(e instanceof RevisionConflictError)) throw e;
      const fresh = await deps.instances.get(id);
      if (!fresh) throw new NotFoundError('instance', id, 'id');
      throw this.conflict(action, fresh, e);
    }
    const record = await this.ctx.startAction(id, action, request);
    try {
      await operation(driver, working);
    } catch (e) {
      const fault = faultOf(e, this.ctx.now());
      const fresh = (await deps.instances.get(id)) ?? working;
      await this.ctx.applyAsTaskOwner(fresh, row.task, { taskState: null, fault });
      await this.ctx.finishAction(record, fault);
      this.ctx.emitFault(id, instance.hostId, fault);
      if (e instanceof NovaError) throw e;
      throw new DriverError(
        { driver: driver.kind, operation: action, instanceId: id, hostId: instance.hostId },
        fault.message,
        { cause: e },
      );
    }
    const outcome = outcomeOf(action, instance.vmState);
    const done = await this.ctx.applyAsTaskOwner(working, row.task, {
      vmState: outcome.vmState,
      powerState: outcome.powerState,
      taskState: null,
      fault: null,
      ...extraPatch,
    });
    await this.ctx.finishAction(record, null);
    return done ?? (await deps.instances.get(id)) ?? working;
  }

  private conflict(action: InstanceActionName, i: Instance, cause?: unknown): InvalidStateError {
    return new InvalidStateError(
      { instanceId: i.id, action, vmState: i.vmState, taskState: i.taskState, powerState: i.powerState },
      cause === undefined ? undefined : { cause },
    );
  }
}
