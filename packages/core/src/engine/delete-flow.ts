import { DriverError, NotFoundError, RevisionConflictError } from '../errors.js';
import type { RequestContext } from '../model/action.js';
import type { Claim } from '../model/claim.js';
import type { Instance } from '../model/instance.js';
import { type EngineContext, faultOf, quotaDeltasOf } from './engine-context.js';

/**
 * Delete: accepted in every live state and over any task in progress (a stuck task never blocks
 * it); idempotent (deleting a gone instance resolves; a second delete joins the first). Stops a
 * running build, destroys the guest, releases ports, volumes, claims, quota and group membership,
 * then removes the record.
 */
export class DeleteFlow {
  constructor(private readonly ctx: EngineContext) {}

  async delete(id: string, request?: RequestContext): Promise<void> {
    const running = this.ctx.deletes.get(id);
    if (running) return running;
    const work = this.run(id, request);
    this.ctx.deletes.set(id, work);
    try {
      await work;
    } finally {
      this.ctx.deletes.delete(id);
    }
  }

  private async run(id: string, request?: RequestContext): Promise<void> {
    const { deps } = this.ctx;
    const first = await deps.instances.get(id);
    if (!first) return;
    const ticket = this.ctx.builds.get(id);
    if (ticket) ticket.cancelled = true;
    // the claims are read alongside: a build this delete cancelled releases what it claims later
    const [action, instance, claims] = await Promise.all([
      this.ctx.startAction(id, 'delete', request),
      this.takeOver(first),
      deps.claims.list({ instanceId: id }),
    ]);
    if (!instance) {
      await this.ctx.finishAction(action, null);
      return;
    }
    if (instance.hostId && deps.registry.has(instance.hostId)) {
      try {
        await deps.registry.driverFor(instance.hostId).destroy(instance);
      } catch (e) {
        const fault = faultOf(e, this.ctx.now());
        await this.ctx.applyAsTaskOwner(instance, 'deleting', { vmState: 'error', taskState: null, fault });
        await this.ctx.finishAction(action, fault);
        this.ctx.emitFault(id, instance.hostId, fault);
        throw e instanceof DriverError
          ? e
          : new DriverError(
              { driver: 'unknown', operation: 'destroy', instanceId: id, hostId: instance.hostId },
              fault.message,
              { cause: e },
            );
      }
    }
    await this.releaseAll(instance, claims);
    // the record goes and the action ends side by side (on a batching store: in one transaction;
    // after a crash between them reconciliation finishes a `deleting` instance or closes the action)
    const [, ended] = await Promise.all([deps.instances.remove(id), this.ctx.recordActionEnd(action, null)]);
    const at = this.ctx.now();
    this.ctx.emit(() => ({
      type: 'instance.state',
      instanceId: id,
      at,
      vmState: 'deleted',
      taskState: null,
      powerState: 'nostate',
      previous: { vmState: instance.vmState, taskState: instance.taskState, powerState: instance.powerState },
      hostId: instance.hostId,
    }));
    this.ctx.emitAction(ended);
    await deps.actions.instanceDeleted(id);
    this.ctx.emit(() => ({ type: 'instance.deleted', instanceId: id, at }));
  }

  /** Sets task `deleting` whatever task is running; retries lost updates. */
  private async takeOver(start: Instance): Promise<Instance | undefined> {
    let current: Instance | undefined = start;
    for (let i = 0; i < 50 && current; i++) {
      try {
        return await this.ctx.apply(current, { taskState: 'deleting' });
      } catch (e) {
        if (e instanceof NotFoundError) return undefined;
        if (!(e instanceof RevisionConflictError)) throw e;
        current = await this.ctx.deps.instances.get(start.id);
      }
    }
    return current;
  }

  /**
   * Releases everything the instance holds besides its guest. Safe to call twice.
   * @param claims the instance's claims (read when the delete began)
   */
  private async releaseAll(instance: Instance, claims: readonly Claim[]): Promise<void> {
    const { deps } = this.ctx;
    // independent of each other: released side by side
    await Promise.all([
      (async () => {
        await deps.network.deallocate(instance);
        if (instance.hostId) await deps.volumes.disconnect(instance, instance.hostId);
      })(),
      (async () => {
        for (const claim of claims) await deps.scheduler.release(claim);
      })(),
      deps.quota.release(instance.projectId, quotaDeltasOf(instance)),
      instance.hints.group !== undefined
        ? deps.groups.removeMember(instance.hints.group, instance.id)
        : undefined,
    ]);
  }
}
