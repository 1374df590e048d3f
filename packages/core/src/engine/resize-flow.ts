import { z } from 'zod';
import {
  CapabilityUnsupportedError,
  DeadlineExceededError,
  EngineClosedError,
  MigrationPreCheckError,
  NotFoundError,
  NoValidHostError,
} from '../errors.js';
import type { InstanceAction, RequestContext } from '../model/action.js';
import type { Claim } from '../model/claim.js';
import type { Flavor } from '../model/flavor.js';
import type { Image } from '../model/image.js';
import type { Instance, MoveContext } from '../model/instance.js';
import type { MigrationRecord } from '../model/migration.js';
import { idSchema } from '../model/names.js';
import type { TaskState } from '../model/states.js';
import { parseInput } from '../model/validation.js';
import type { ComputeDriver } from '../ports/driver.js';
import { type ColdMigratable, type MigrationTarget, supportsColdMigration } from '../ports/driver-moves.js';
import type { Selection } from '../ports/scheduler.js';
import type { TaskControl } from './deadline.js';
import { type EngineContext, faultOf } from './engine-context.js';
import { claimExisting, placeExisting } from './instance-placement.js';
import { MigrationLog } from './migration-log.js';
import { devicesOnHost } from './move-devices.js';
import {
  callOf,
  conflictOf,
  driverFailure,
  endTask,
  instanceFor,
  quotaExcess,
  type TakenTask,
  takeTask,
  withQuota,
} from './move-task.js';

/** Options of `compute.migrate` (cold migration). */
export interface ColdMigrateOptions {
  /** Destination host; the scheduler picks one when omitted (never the instance's own). */
  readonly host?: string;
}

const resizeInputSchema = z.strictObject({ flavorId: idSchema });
const migrateInputSchema = z.strictObject({ host: idSchema.optional() });

type Movable = ComputeDriver & ColdMigratable;

/**
 * Resize and cold migration (Nova's `resize` / `migrate`, then `confirmResize` or
 * `revertResize`), through the drivers' {@link ColdMigratable} port:
 *
 * 1. task `resize_prep` and the action in one unit; the destination is placed with the filters and
 *    claims of a create (the new flavor; the instance's own host left out, unless a resize finds no
 *    other and `allowResizeToSameHost` is on); a named host is claimed if it fits;
 * 2. one unit sets the move context (both hosts, both flavors, both claims), task
 *    `resize_migrating` and the quota of the bigger flavor (Nova counts the bigger one while a
 *    resize waits), so that the record always counts what is consumed;
 * 3. the destination's driver prepares, the source's powers the guest off and hands its disks
 *    over (keeping its copy), task `resize_finish`, the destination's driver re-creates the guest;
 * 4. one unit moves the record to the destination with the new flavor, state `resized`.
 *
 * Both claims stay until the end: a confirm drops the source's copy and claim, a revert the
 * destination's guest and claim and brings the source's copy back with its old flavor. Quota
 * follows the flavor that remains. A failure in 3 rolls back (destination cleaned, the source's
 * copy brought back, the destination's claim and the extra quota released) and leaves the instance
 * in its old state with a fault; a source that cannot come back leaves it in ERROR. Each move has a
 * migration record (`resize` or `cold`).
 */
export class ResizeFlow {
  private readonly log: MigrationLog;

  constructor(private readonly ctx: EngineContext) {
    this.log = new MigrationLog(ctx);
  }

  /**
   * @throws ValidationError (field `flavorId` / `host`); NotFoundError (instance, flavor, host,
   * image); InvalidStateError; InstanceLockedError; CapabilityUnsupportedError (`coldMigration`);
   * MigrationPreCheckError (same flavor, smaller disk, own host, another driver kind);
   * NoValidHostError; QuotaExceededError; DriverError. Nothing is left held then.
   */
  async start(
    id: string,
    kind: 'resize' | 'cold',
    input: { flavorId?: string; host?: string },
    request?: RequestContext,
  ): Promise<Instance> {
    const action = kind === 'resize' ? 'resize' : 'migrate';
    if (this.ctx.closed) throw new EngineClosedError(action);
    const parsed =
      kind === 'resize'
        ? { ...parseInput(resizeInputSchema, input), host: undefined }
        : { ...parseInput(migrateInputSchema, input), flavorId: undefined };
    const { deps } = this.ctx;
    const instance = await instanceFor(this.ctx, id, action, request);
    if (!instance.hostId) throw conflictOf(action, instance);
    const source = this.movable(instance.hostId);
    let newFlavor: Flavor = instance.flavor;
    if (parsed.flavorId !== undefined) {
      const found = await deps.flavors.get(parsed.flavorId);
      if (!found) throw new NotFoundError('flavor', parsed.flavorId, 'flavorId');
      if (found.id === instance.flavor.id) {
        throw new MigrationPreCheckError(
          id,
          'the new flavor is the flavor it has (Nova: CannotResizeToSameFlavor)',
        );
      }
      if (found.diskGb < instance.flavor.diskGb) {
        throw new MigrationPreCheckError(
          id,
          `the disk cannot shrink from ${instance.flavor.diskGb} to ${found.diskGb} GB`,
        );
      }
      newFlavor = found;
    }
    if (parsed.host !== undefined) {
      if (parsed.host === instance.hostId) {
        throw new MigrationPreCheckError(id, 'the destination is the host it runs on', parsed.host);
      }
      if (!deps.registry.has(parsed.host)) throw new NotFoundError('host', parsed.host, 'host');
      this.sameKind(id, source, parsed.host);
    }
    const image = await deps.images.get(instance.imageId);
    if (!image) throw new NotFoundError('image', instance.imageId, 'imageId');
    // refused up front when the bigger flavor is over quota (checked again, atomically, when taken)
    const extra = quotaExcess(newFlavor, instance.flavor);
    if (extra.cores > 0 || extra.ramMb > 0)
      await deps.quota.rollback(await deps.quota.reserve(instance.projectId, extra));
    const taken = await takeTask(this.ctx, instance, action, request);
    try {
      return await this.run(taken, kind, source, newFlavor, image, parsed.host);
    } finally {
      taken.done();
    }
  }

  /**
   * Ends a resize, keeping it: the source's copy and claim go, quota drops to the new flavor, the
   * instance is active (or stopped) again. @throws InvalidStateError unless `resized`
   */
  async confirm(id: string, request?: RequestContext): Promise<Instance> {
    if (this.ctx.closed) throw new EngineClosedError('confirmResize');
    const instance = await instanceFor(this.ctx, id, 'confirmResize', request);
    const move = instance.move;
    if (!move) throw conflictOf('confirmResize', instance);
    const taken = await takeTask(this.ctx, instance, 'confirmResize', request);
    try {
      return await this.finishConfirm(taken, move);
    } finally {
      taken.done();
    }
  }

  /**
   * Undoes a resize: the destination's guest and claim go, the source's copy comes back with its
   * old flavor, quota drops to the old flavor. @throws InvalidStateError unless `resized`
   */
  async revert(id: string, request?: RequestContext): Promise<Instance> {
    if (this.ctx.closed) throw new EngineClosedError('revertResize');
    const instance = await instanceFor(this.ctx, id, 'revertResize', request);
    const move = instance.move;
    if (!move) throw conflictOf('revertResize', instance);
    const taken = await takeTask(this.ctx, instance, 'revertResize', request);
    try {
      return await this.finishRevert(taken, move);
    } finally {
      taken.done();
    }
  }

  /**
   * Confirms the resized instances whose confirm window (`resizeConfirmWindowMs`) has passed
   * (Nova's `_poll_unconfirmed_resizes`); resolves their ids. Nothing when the window is 0.
   */
  async confirmDue(): Promise<string[]> {
    const window = this.ctx.deps.options.resizeConfirmWindowMs;
    if (window <= 0 || this.ctx.closed) return [];
    const confirmed: string[] = [];
    for (const i of await this.ctx.deps.instances.list({ status: ['resized'] })) {
      const finishedAt = i.move?.finishedAt;
      if (i.taskState !== null || finishedAt == null || finishedAt + window > this.ctx.now()) continue;
      if (this.ctx.builds.has(i.id) || this.ctx.deletes.has(i.id)) continue;
      try {
        await this.confirm(i.id);
        confirmed.push(i.id);
      } catch {
        // changed meanwhile (reverted, deleted) or failed with a fault recorded: next pass decides
      }
    }
    return confirmed;
  }

  /**
   * Heals a move a crash interrupted (reconciliation): a confirm in progress is finished, anything
   * else is rolled back to the source as a revert would.
   */
  async recover(instance: Instance): Promise<string> {
    const move = instance.move;
    if (!move || instance.taskState === null) return instance.vmState;
    const confirming = instance.taskState === 'resize_confirming';
    try {
      // the leftover task is taken over by the confirm or revert that heals it
      const taken = await takeTask(
        this.ctx,
        instance,
        confirming ? 'confirmResize' : 'revertResize',
        undefined,
      );
      try {
        const done = confirming
          ? await this.finishConfirm(taken, move)
          : await this.finishRevert(taken, move);
        return done.vmState;
      } finally {
        taken.done();
      }
    } catch {
      return (await this.ctx.deps.instances.get(instance.id))?.vmState ?? 'deleted';
    }
  }

  // ---- the resize -------------------------------------------------------------------------------

  private movable(hostId: string): Movable {
    const driver = this.ctx.deps.registry.driverFor(hostId);
    if (!supportsColdMigration(driver))
      throw new CapabilityUnsupportedError('coldMigration', driver.kind, hostId);
    return driver;
  }

  /** @throws MigrationPreCheckError unless the destination's driver is of the source's kind and can move */
  private sameKind(instanceId: string, source: ComputeDriver, destHostId: string): Movable {
    const dest = this.ctx.deps.registry.driverFor(destHostId);
    if (dest.kind !== source.kind) {
      throw new MigrationPreCheckError(
        instanceId,
        `the destination's driver is ${dest.kind}, the source's ${source.kind}`,
        destHostId,
      );
    }
    if (!supportsColdMigration(dest))
      throw new CapabilityUnsupportedError('coldMigration', dest.kind, destHostId);
    return dest;
  }

  /** Places the destination: a named host if it fits, else the scheduler's pick. */
  private async schedule(
    instance: Instance,
    kind: 'resize' | 'cold',
    flavor: Flavor,
    image: Image,
    requestId: string,
    host: string | undefined,
  ): Promise<Selection> {
    const own = instance.hostId!;
    // hosts whose driver is of another kind, or cannot move, are no destination
    const source = this.ctx.deps.registry.driverFor(own);
    const unfit = this.ctx.deps.registry
      .list()
      .filter((b) => b.driver.kind !== source.kind || !supportsColdMigration(b.driver))
      .map((b) => b.id);
    const placement = { flavor, image, requestId, excludedHostIds: [own, ...unfit] };
    if (host !== undefined) {
      const claimed = await claimExisting(this.ctx, instance, host, placement);
      if (!claimed) {
        throw new MigrationPreCheckError(instance.id, 'the host has no room for it or fails a filter', host);
      }
      return claimed;
    }
    try {
      return await placeExisting(this.ctx, instance, placement);
    } catch (e) {
      if (
        !(e instanceof NoValidHostError) ||
        kind !== 'resize' ||
        !this.ctx.deps.options.allowResizeToSameHost
      ) {
        throw e;
      }
      // Nova's allow_resize_to_same_host: the instance's own host, holding both claims
      const same = await claimExisting(this.ctx, instance, own, { flavor, image, requestId });
      if (!same) throw e;
      return same;
    }
  }

  private async run(
    taken: TakenTask,
    kind: 'resize' | 'cold',
    source: Movable,
    newFlavor: Flavor,
    image: Image,
    host: string | undefined,
  ): Promise<Instance> {
    const { deps } = this.ctx;
    const { working, record, task } = taken;
    const id = working.id;
    const sourceHostId = working.hostId!;
    let selection: Selection;
    let dest: Movable;
    try {
      selection = await this.schedule(working, kind, newFlavor, image, record.requestId, host);
      try {
        dest = this.sameKind(id, source, selection.hostId);
      } catch (e) {
        await deps.scheduler.release(selection.claim);
        throw e;
      }
    } catch (e) {
      await endTask(this.ctx, working, 'resize_prep', record, {}, faultOf(e, this.ctx.now()));
      throw e;
    }
    const destHostId = selection.hostId;
    const sourceClaim = (await deps.claims.list({ instanceId: id })).find(
      (c) => c.hostId === sourceHostId && c.id !== selection.claim.id,
    );
    let migration = await this.log.begin(working, kind, {
      destHostId,
      newFlavorId: newFlavor.id,
      status: 'pre-migrating',
    });
    const move: MoveContext = {
      migrationId: migration.id,
      kind,
      sourceHostId,
      sourceZone: working.availabilityZone,
      destHostId,
      oldFlavor: working.flavor,
      newFlavor,
      sourceClaimId: sourceClaim?.id ?? '',
      destClaimId: selection.claim.id,
      powerOn: working.vmState !== 'stopped',
      finishedAt: null,
    };
    let moving: Instance | undefined;
    try {
      moving = await withQuota(
        this.ctx,
        working.projectId,
        quotaExcess(newFlavor, working.flavor),
        'consume',
        (w) => this.ctx.applyAsTaskOwner(working, 'resize_prep', { move, taskState: 'resize_migrating' }, w),
      );
    } catch (e) {
      await deps.scheduler.release(selection.claim);
      await this.log.update(migration, { status: 'error', error: (e as Error).message });
      await endTask(this.ctx, working, 'resize_prep', record, {}, faultOf(e, this.ctx.now()));
      throw e;
    }
    if (!moving) return this.stoppedByDelete(working, move, record, selection.claim, migration);
    let current: Instance = moving;
    let currentTask: TaskState = 'resize_migrating';
    let handedOver = false;
    const onDest: Instance = { ...moving, hostId: destHostId, flavor: newFlavor };
    try {
      const prepared = await this.ctx.callDriver(
        'move',
        { operation: 'prepareColdMigrationTarget', instanceId: id, hostId: destHostId },
        task,
        (_, call) => dest.prepareColdMigrationTarget(onDest, newFlavor, callOf(call)),
      );
      const target: MigrationTarget = {
        ...prepared,
        hostId: destHostId,
        sameHost: destHostId === sourceHostId,
      };
      migration = await this.log.update(migration, { status: 'migrating' });
      const disks = await this.ctx.callDriver(
        'move',
        { operation: 'migrateDisksAndPowerOff', instanceId: id, hostId: sourceHostId },
        task,
        (_, call) => source.migrateDisksAndPowerOff(moving, target, callOf(call)),
      );
      handedOver = true;
      const finishing = await this.ctx.applyAsTaskOwner(current, currentTask, {
        taskState: 'resize_finish',
        powerState: 'shutdown',
      });
      if (!finishing) return this.stoppedByDelete(current, move, record, selection.claim, migration);
      current = finishing;
      currentTask = 'resize_finish';
      migration = await this.log.update(migration, { status: 'post-migrating' });
      await this.ctx.callDriver(
        'move',
        { operation: 'finishMigration', instanceId: id, hostId: destHostId },
        task,
        async (_, call) =>
          dest.finishMigration({
            instance: { ...onDest, taskState: 'resize_finish' },
            flavor: newFlavor,
            image,
            images: deps.images,
            disks,
            powerOn: move.powerOn,
            volumes: (await devicesOnHost(this.ctx, onDest, destHostId)).volumes,
            ...callOf(call),
          }),
      );
    } catch (e) {
      if (this.takenOver(task))
        return this.stoppedByDelete(current, move, record, selection.claim, migration);
      return this.rollBack(current, currentTask, move, record, selection.claim, migration, e, handedOver, {
        source,
        dest,
      });
    }
    const zone = selection.availabilityZone ?? (await deps.hosts.get(destHostId))?.availabilityZone;
    const done = await endTask(
      this.ctx,
      current,
      currentTask,
      record,
      {
        hostId: destHostId,
        availabilityZone: zone ?? current.availabilityZone,
        flavor: newFlavor,
        vmState: 'resized',
        powerState: move.powerOn ? 'running' : 'shutdown',
        move: { ...move, finishedAt: this.ctx.now() },
      },
      null,
    );
    deps.scheduler.buildFinished?.(selection.claim);
    if (!done) return this.stoppedByDelete(current, move, record, selection.claim, migration);
    await this.log.update(migration, { status: 'finished' });
    return done;
  }

  /** Whether a delete took the task over (its signal aborted for another reason than a deadline). */
  private takenOver(task: TaskControl): boolean {
    return task.aborted && !(task.reason instanceof DeadlineExceededError);
  }

  /**
   * The move failed before the destination's guest was finished: the destination is cleaned, the
   * source's copy comes back, the destination's claim and the extra quota go, the instance takes its
   * old state with the fault (ERROR when the source could not come back).
   */
  private async rollBack(
    current: Instance,
    currentTask: TaskState,
    move: MoveContext,
    record: InstanceAction,
    destClaim: Claim,
    migration: MigrationRecord,
    error: unknown,
    handedOver: boolean,
    drivers: { source: Movable; dest: Movable },
  ): Promise<never> {
    const { deps } = this.ctx;
    const id = current.id;
    const onDest: Instance = { ...current, hostId: move.destHostId, flavor: move.newFlavor };
    const onSource: Instance = { ...current, hostId: move.sourceHostId, flavor: move.oldFlavor };
    await this.ctx
      .callDriver(
        'move',
        { operation: 'revertMigrationOnDestination', instanceId: id, hostId: move.destHostId },
        undefined,
        (_, call) => drivers.dest.revertMigrationOnDestination(onDest, callOf(call)),
      )
      .catch(() => undefined);
    let restored = true;
    if (handedOver) {
      restored = await this.ctx
        .callDriver(
          'move',
          { operation: 'finishRevertMigration', instanceId: id, hostId: move.sourceHostId },
          undefined,
          (_, call) => drivers.source.finishRevertMigration(onSource, move.powerOn, callOf(call)),
        )
        .then(
          () => true,
          () => false,
        );
    }
    deps.scheduler.buildFinished?.(destClaim);
    await deps.scheduler.release(destClaim);
    const fault = faultOf(error, this.ctx.now(), {
      hostId: move.destHostId,
      ...(restored ? {} : { sourceRestored: false }),
    });
    await withQuota(
      this.ctx,
      current.projectId,
      quotaExcess(move.newFlavor, move.oldFlavor),
      'release',
      (w) =>
        endTask(
          this.ctx,
          current,
          currentTask,
          record,
          {
            hostId: move.sourceHostId,
            flavor: move.oldFlavor,
            move: null,
            vmState: restored ? (move.powerOn ? 'active' : 'stopped') : 'error',
            powerState: restored ? (move.powerOn ? 'running' : 'shutdown') : 'nostate',
          },
          fault,
          w,
        ),
    );
    await this.log.update(migration, { status: 'error', error: fault.message });
    throw driverFailure(
      error,
      { driver: drivers.dest.kind, operation: 'resize', instanceId: id, hostId: move.destHostId },
      fault.message,
    );
  }

  /**
   * A delete took the instance over mid-move: what the move made on the destination goes (the
   * delete destroys the guest the record names and releases the claims it read); resolves the
   * instance as it is now.
   */
  private async stoppedByDelete(
    current: Instance,
    move: MoveContext,
    record: InstanceAction,
    destClaim: Claim,
    migration: MigrationRecord,
  ): Promise<Instance> {
    const { deps } = this.ctx;
    const onDest: Instance = { ...current, hostId: move.destHostId, flavor: move.newFlavor };
    if (deps.registry.has(move.destHostId)) {
      const dest = deps.registry.driverFor(move.destHostId);
      if (supportsColdMigration(dest)) await dest.revertMigrationOnDestination(onDest).catch(() => undefined);
      if (move.destHostId !== move.sourceHostId) await dest.destroy(onDest).catch(() => undefined);
    }
    await deps.scheduler.release(destClaim);
    await this.ctx
      .finishAction(record, faultOf(new Error('stopped by a delete'), this.ctx.now()))
      .catch(() => undefined);
    await this.log.update(migration, { status: 'cancelled', error: 'stopped by a delete' });
    await this.ctx.deletes.get(current.id)?.catch(() => undefined);
    return (await deps.instances.get(current.id)) ?? { ...current, vmState: 'deleted', taskState: null };
  }

  // ---- confirm and revert ---------------------------------------------------------------------------

  private async finishConfirm(taken: TakenTask, move: MoveContext): Promise<Instance> {
    const { deps } = this.ctx;
    const { working, record, task } = taken;
    const id = working.id;
    const onSource: Instance = { ...working, hostId: move.sourceHostId, flavor: move.oldFlavor };
    const migration = await deps.migrations.get(move.migrationId);
    try {
      if (deps.registry.has(move.sourceHostId)) {
        const source = this.movable(move.sourceHostId);
        await this.ctx.callDriver(
          'move',
          { operation: 'confirmMigration', instanceId: id, hostId: move.sourceHostId },
          task,
          (_, call) => source.confirmMigration(onSource, callOf(call)),
        );
      }
    } catch (e) {
      const fault = faultOf(e, this.ctx.now(), { hostId: move.sourceHostId });
      await endTask(this.ctx, working, 'resize_confirming', record, { vmState: 'error' }, fault);
      if (migration) await this.log.update(migration, { status: 'error', error: fault.message });
      throw driverFailure(
        e,
        { driver: 'source', operation: 'confirmMigration', instanceId: id, hostId: move.sourceHostId },
        fault.message,
      );
    }
    const done = await withQuota(
      this.ctx,
      working.projectId,
      quotaExcess(move.oldFlavor, move.newFlavor),
      'release',
      (w) =>
        endTask(
          this.ctx,
          working,
          'resize_confirming',
          record,
          {
            move: null,
            vmState: move.powerOn ? 'active' : 'stopped',
            powerState: move.powerOn ? 'running' : 'shutdown',
          },
          null,
          w,
        ),
    );
    // the source's claim goes once the record no longer names it
    await this.releaseClaim(id, move.sourceClaimId);
    if (migration) await this.log.update(migration, { status: 'confirmed' });
    return done ?? (await deps.instances.get(id)) ?? working;
  }

  private async finishRevert(taken: TakenTask, move: MoveContext): Promise<Instance> {
    const { deps } = this.ctx;
    const { working, record, task } = taken;
    const id = working.id;
    const onDest: Instance = { ...working, hostId: move.destHostId, flavor: move.newFlavor };
    const onSource: Instance = { ...working, hostId: move.sourceHostId, flavor: move.oldFlavor };
    const migration = await deps.migrations.get(move.migrationId);
    if (migration) await this.log.update(migration, { status: 'reverting' });
    try {
      if (deps.registry.has(move.destHostId)) {
        const dest = this.movable(move.destHostId);
        await this.ctx.callDriver(
          'move',
          { operation: 'revertMigrationOnDestination', instanceId: id, hostId: move.destHostId },
          task,
          (_, call) => dest.revertMigrationOnDestination(onDest, callOf(call)),
        );
      }
      const source = this.movable(move.sourceHostId);
      await this.ctx.callDriver(
        'move',
        { operation: 'finishRevertMigration', instanceId: id, hostId: move.sourceHostId },
        task,
        (_, call) => source.finishRevertMigration(onSource, move.powerOn, callOf(call)),
      );
    } catch (e) {
      const fault = faultOf(e, this.ctx.now(), { hostId: move.sourceHostId });
      await endTask(this.ctx, working, 'resize_reverting', record, { vmState: 'error' }, fault);
      if (migration) await this.log.update(migration, { status: 'error', error: fault.message });
      throw driverFailure(
        e,
        { driver: 'source', operation: 'revertResize', instanceId: id, hostId: move.sourceHostId },
        fault.message,
      );
    }
    const done = await withQuota(
      this.ctx,
      working.projectId,
      quotaExcess(move.newFlavor, move.oldFlavor),
      'release',
      (w) =>
        endTask(
          this.ctx,
          working,
          'resize_reverting',
          record,
          {
            hostId: move.sourceHostId,
            availabilityZone: move.sourceZone,
            flavor: move.oldFlavor,
            move: null,
            vmState: move.powerOn ? 'active' : 'stopped',
            powerState: move.powerOn ? 'running' : 'shutdown',
          },
          null,
          w,
        ),
    );
    await this.releaseClaim(id, move.destClaimId);
    if (migration) await this.log.update(migration, { status: 'reverted' });
    return done ?? (await deps.instances.get(id)) ?? working;
  }

  private async releaseClaim(instanceId: string, claimId: string): Promise<void> {
    const claim = (await this.ctx.deps.claims.list({ instanceId })).find((c) => c.id === claimId);
    if (claim) await this.ctx.deps.scheduler.release(claim).catch(() => undefined);
  }
}
