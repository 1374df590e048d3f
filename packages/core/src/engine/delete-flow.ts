import {
  BuildAbortedError,
  DriverError,
  EngineClosedError,
  NotFoundError,
  RevisionConflictError,
} from '../errors.js';
import type { RequestContext } from '../model/action.js';
import type { Claim } from '../model/claim.js';
import type { Instance } from '../model/instance.js';
import { supportsColdMigration } from '../ports/driver-moves.js';
import type { StoreWrite } from '../ports/unit-of-work.js';
import { type ActionStep, type EngineContext, faultOf, quotaDeltasOf } from './engine-context.js';
import { assertNotLocked } from './lock-flow.js';

/** How many lost updates a delete's take-over survives before it reports the conflict. */
const TAKE_OVER_ATTEMPTS = 50;

/**
 * Delete: accepted in every live state and over any task in progress (a stuck task never blocks
 * it); idempotent (deleting a gone instance resolves; a second delete joins the first). Aborts a
 * running build through its signal, destroys the guest (with the destroy deadline), releases
 * ports, volumes and claims, then removes the record, ends the action, leaves the server group
 * and gives the quota back in one unit of work; a shelved instance's snapshot image is removed
 * from the image service after. A destroy that fails leaves the instance in
 * ERROR with its claim held (as in Nova: a claim lives until the instance is deleted).
 */
export class DeleteFlow {
  constructor(private readonly ctx: EngineContext) {}

  async delete(id: string, request?: RequestContext, options: { internal?: boolean } = {}): Promise<void> {
    if (this.ctx.closed && !options.internal) throw new EngineClosedError('delete');
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
    assertNotLocked(first, 'delete', request);
    this.ctx.builds.get(id)?.abort(new BuildAbortedError(id));
    // the claims are read alongside: a build this delete stopped releases what it claims later
    const [taken, claims] = await Promise.all([
      this.takeOver(first, request),
      deps.claims.list({ instanceId: id }),
    ]);
    if (!taken) return;
    const { instance, step } = taken;
    // the host whose destroy failed (the record's, or one of a resize's two)
    let failedHost = instance.hostId ?? '';
    try {
      if (instance.hostId && deps.registry.has(instance.hostId)) {
        await this.ctx.callDriver(
          'destroy',
          { operation: 'destroy', instanceId: id, hostId: instance.hostId },
          undefined,
          (d, call) => d.destroy(instance, call),
        );
      }
      // a resize waiting for its end (or interrupted) has a guest or a kept copy on its other host
      if (instance.move) {
        await this.destroyMoveCopies(instance, (h) => {
          failedHost = h;
        });
      }
    } catch (e) {
      const fault = faultOf(e, this.ctx.now());
      const ended = this.ctx.actionEnd(step.action, fault);
      await this.ctx.applyAsTaskOwner(instance, 'deleting', { vmState: 'error', taskState: null, fault }, [
        this.ctx.faultEvent(id, failedHost, fault),
        ...ended.writes,
      ]);
      if (e instanceof DriverError) throw e;
      throw new DriverError(
        {
          driver: deps.registry.has(failedHost) ? deps.registry.driverFor(failedHost).kind : 'unknown',
          operation: 'destroy',
          instanceId: id,
          hostId: failedHost,
        },
        fault.message,
        { cause: e },
      );
    }
    // the record goes, the action ends and the group forgets the member in one unit
    const at = this.ctx.now();
    const ended = this.ctx.actionEnd(step.action, null);
    const writes: StoreWrite[] = [
      // at the revision this delete took over: of two deletes (two processes), one removes the
      // record and gives the quota back, the other stands down
      { kind: 'instance.remove', id, expectedRevision: instance.revision },
      {
        kind: 'event',
        event: {
          type: 'instance.state',
          instanceId: id,
          at,
          vmState: 'deleted',
          taskState: null,
          powerState: 'nostate',
          previous: {
            vmState: instance.vmState,
            taskState: instance.taskState,
            powerState: instance.powerState,
          },
          hostId: instance.hostId,
        },
      },
      ...ended.writes,
      { kind: 'event', event: { type: 'instance.deleted', instanceId: id, at } },
    ];
    if (instance.hints.group !== undefined) {
      writes.push({ kind: 'group.removeMember', groupId: instance.hints.group, instanceId: id });
    }
    const quota = quotaDeltasOf(instance);
    if (this.ctx.quotaInUnit)
      writes.push({ kind: 'quota.release', projectId: instance.projectId, deltas: quota });
    // ports, volumes and claims are released while the record goes (a crash between leaves a
    // `deleting` instance, or claims without an instance: reconciliation finishes either)
    const [released, removed] = await Promise.allSettled([
      this.releaseAll(instance, claims),
      this.ctx.commit(writes),
    ]);
    if (removed.status === 'rejected') {
      const e = removed.reason;
      if (e instanceof RevisionConflictError || e instanceof NotFoundError) {
        // another delete took the instance over since: it finishes the job (quota included)
        const now = await deps.instances.get(id);
        if (!now || now.taskState === 'deleting') return;
      }
      throw e;
    }

    // quota goes back with the record (in its unit, or once it is gone): a unit that failed leaves
    // the instance `deleting`, still counted, and the delete that finishes it releases once (a
    // release lost after the unit is put right by the recount of reconciliation)
    if (!this.ctx.quotaInUnit) await deps.quota.release(instance.projectId, quota);
    await deps.actions.instanceDeleted(id);
    // a shelved instance's snapshot goes with it (Nova's delete removes the shelved image); once
    // the record is gone nothing boots from it. A failed removal leaves an image, not an instance.
    if (instance.shelved) await deps.images.remove(instance.shelved.imageId).catch(() => undefined);
    if (released.status === 'rejected') throw released.reason;
  }

  /**
   * Sets task `deleting` whatever task is running, and starts the delete action in the same unit;
   * retries lost updates. Resolves `undefined` if the instance is gone.
   * @throws RevisionConflictError if the instance kept changing for {@link TAKE_OVER_ATTEMPTS} tries.
   */
  private async takeOver(
    start: Instance,
    request: RequestContext | undefined,
  ): Promise<{ instance: Instance; step: ActionStep } | undefined> {
    let current: Instance | undefined = start;
    const step = this.ctx.actionStart(start.id, 'delete', request);
    for (let i = 0; i < TAKE_OVER_ATTEMPTS && current; i++) {
      try {
        return { instance: await this.ctx.apply(current, { taskState: 'deleting' }, [], step.writes), step };
      } catch (e) {
        if (e instanceof NotFoundError) return undefined;
        if (!(e instanceof RevisionConflictError)) throw e;
        current = await this.ctx.deps.instances.get(start.id);
      }
    }
    if (!current) return undefined;
    throw new RevisionConflictError('instance', start.id, current.revision, -1);
  }

  /**
   * Destroys what a resize or cold migration left on its hosts besides the guest the record names:
   * the source's kept copy (`confirmMigration`, else a destroy there) and a guest on the host the
   * record does not name. A host whose copy cannot go fails the delete (the instance stays, in
   * ERROR, holding its claims, as a failed destroy leaves it).
   */
  private async destroyMoveCopies(instance: Instance, failedOn: (hostId: string) => void): Promise<void> {
    const { deps } = this.ctx;
    const move = instance.move!;
    for (const hostId of new Set([move.sourceHostId, move.destHostId])) {
      if (!deps.registry.has(hostId)) continue;
      const here: Instance = { ...instance, hostId };
      const destroy = () =>
        this.ctx.callDriver(
          'destroy',
          { operation: 'destroy', instanceId: instance.id, hostId },
          undefined,
          (d, call) => d.destroy(here, call),
        );
      try {
        const driver = deps.registry.driverFor(hostId);
        if (hostId === move.sourceHostId && supportsColdMigration(driver)) {
          await this.ctx
            .callDriver(
              'destroy',
              { operation: 'confirmMigration', instanceId: instance.id, hostId },
              undefined,
              (_, call) => driver.confirmMigration(here, call),
            )
            // the copy goes with the guest's destroy then (a hypervisor lists it as a guest)
            .catch(destroy);
        }
        if (hostId !== instance.hostId) await destroy();
      } catch (e) {
        failedOn(hostId);
        throw e;
      }
    }
  }

  /**
   * Releases what the instance holds besides its guest, its record and its quota. Safe to call twice.
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
    ]);
  }
}
