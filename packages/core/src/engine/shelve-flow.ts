import { CapabilityUnsupportedError, EngineClosedError, NotFoundError } from '../errors.js';
import type { RequestContext } from '../model/action.js';
import type { Image } from '../model/image.js';
import type { Instance } from '../model/instance.js';
import { supportsPowerControl, supportsSnapshot } from '../ports/driver.js';
import type { Selection } from '../ports/scheduler.js';
import { type EngineContext, faultOf } from './engine-context.js';
import { placeExisting } from './instance-placement.js';
import { devicesOnHost } from './move-devices.js';
import { callOf, conflictOf, driverFailure, endTask, instanceFor, takeTask } from './move-task.js';

/**
 * Shelve, shelve offload and unshelve (Nova's): `shelve` powers the guest off (a clean shutdown),
 * snapshots it into the image service (Snapshottable) and leaves it `shelved` on its host, recording the snapshot;
 * `shelveOffload` (at once when `shelvedOffloadTimeMs` is 0, by the reconciler after that time
 * otherwise, or when asked) destroys the guest and releases its claim, the record stays
 * (`shelved_offloaded`, no host); `unshelve` powers a shelved guest on again, or places an
 * offloaded one like a create and boots it from the snapshot, and removes the snapshot image once
 * the instance runs (as Nova does). Quota is unchanged throughout (the instance still exists).
 */
export class ShelveFlow {
  constructor(private readonly ctx: EngineContext) {}

  /** @throws InvalidStateError; InstanceLockedError; CapabilityUnsupportedError (`snapshot`); DriverError */
  async shelve(id: string, request?: RequestContext): Promise<Instance> {
    if (this.ctx.closed) throw new EngineClosedError('shelve');
    const instance = await instanceFor(this.ctx, id, 'shelve', request);
    if (!instance.hostId) throw conflictOf('shelve', instance);
    const hostId = instance.hostId;
    const driver = this.ctx.deps.registry.driverFor(hostId);
    if (!supportsSnapshot(driver)) throw new CapabilityUnsupportedError('snapshot', driver.kind, hostId);
    const { working, record, task, done } = await takeTask(this.ctx, instance, 'shelve', request);
    let shelved: Instance | undefined;
    // Nova's order: a clean shutdown first, so the snapshot holds a disk the guest closed itself
    const powerOffFirst = supportsPowerControl(driver) && instance.powerState !== 'shutdown';
    let stillOff = false;
    try {
      if (powerOffFirst) {
        const timeoutMs = this.ctx.deps.options.powerOffTimeoutMs;
        await this.ctx.callDriver(
          'power',
          { operation: 'powerOff', instanceId: id, hostId },
          task,
          (_, call) => driver.powerOff(working, { timeoutMs, ...callOf(call) }),
        );
        stillOff = true;
      }
      const image = await this.ctx.callDriver(
        'snapshot',
        { operation: 'snapshot', instanceId: id, hostId },
        task,
        (_, call) =>
          driver.snapshot(working, {
            name: `${working.name}-shelved`.slice(0, 255),
            images: this.ctx.deps.images,
            ...callOf(call),
          }),
      );
      stillOff = false;
      shelved = await endTask(
        this.ctx,
        working,
        'shelving',
        record,
        {
          vmState: 'shelved',
          powerState: 'shutdown',
          shelved: { imageId: image.id, at: this.ctx.now(), originalImageId: working.imageId },
        },
        null,
      );
    } catch (e) {
      const fault = faultOf(e, this.ctx.now(), { hostId });
      // a snapshot that failed after the shutdown leaves a running guest running again
      const restored =
        stillOff && instance.powerState === 'running' && (await this.powerBackOn(working, hostId));
      const patch =
        stillOff && !restored ? { vmState: 'stopped' as const, powerState: 'shutdown' as const } : {};
      await endTask(this.ctx, working, 'shelving', record, patch, fault);
      throw driverFailure(
        e,
        { driver: driver.kind, operation: 'shelve', instanceId: id, hostId },
        fault.message,
      );
    } finally {
      done();
    }
    if (!shelved) return (await this.ctx.deps.instances.get(id)) ?? working;
    if (this.ctx.deps.options.shelvedOffloadTimeMs === 0) return this.offload(id, request);
    return shelved;
  }

  /** Powers a guest on again after a failed shelve snapshot; false when that failed too. */
  private async powerBackOn(working: Instance, hostId: string): Promise<boolean> {
    const driver = this.ctx.deps.registry.driverFor(hostId);
    if (!supportsPowerControl(driver)) return false;
    return this.ctx
      .callDriver('power', { operation: 'powerOn', instanceId: working.id, hostId }, undefined, (_, call) =>
        driver.powerOn(working, callOf(call)),
      )
      .then(
        () => true,
        () => false,
      );
  }

  /**
   * Destroys a shelved instance's guest and releases its claim; the record stays, without a host.
   * @throws InvalidStateError unless `shelved`; InstanceLockedError; DriverError
   */
  async offload(id: string, request?: RequestContext): Promise<Instance> {
    if (this.ctx.closed) throw new EngineClosedError('shelveOffload');
    const instance = await instanceFor(this.ctx, id, 'shelveOffload', request);
    const { deps } = this.ctx;
    const { working, record, done } = await takeTask(this.ctx, instance, 'shelveOffload', request);
    try {
      const hostId = working.hostId;
      if (hostId && deps.registry.has(hostId)) {
        try {
          await this.ctx.callDriver(
            'destroy',
            { operation: 'destroy', instanceId: id, hostId },
            undefined,
            (d, call) => d.destroy(working, call),
          );
        } catch (e) {
          const fault = faultOf(e, this.ctx.now(), { hostId });
          await endTask(this.ctx, working, 'shelving_offloading', record, {}, fault);
          throw driverFailure(
            e,
            {
              driver: deps.registry.driverFor(hostId).kind,
              operation: 'shelveOffload',
              instanceId: id,
              hostId,
            },
            fault.message,
          );
        }
      }
      const claims = await deps.claims.list({ instanceId: id });
      const offloaded = await endTask(
        this.ctx,
        working,
        'shelving_offloading',
        record,
        { vmState: 'shelved_offloaded', powerState: 'nostate', hostId: null },
        null,
      );
      // the claims go once the record names no host (reconciliation releases them after a crash)
      for (const c of claims) await deps.scheduler.release(c).catch(() => undefined);
      return offloaded ?? (await deps.instances.get(id)) ?? working;
    } finally {
      done();
    }
  }

  /**
   * Offloads the instances shelved longer than `shelvedOffloadTimeMs` (Nova's
   * `_poll_shelved_instances`); resolves their ids. Nothing when the time is 0 or -1.
   */
  async offloadDue(): Promise<string[]> {
    const after = this.ctx.deps.options.shelvedOffloadTimeMs;
    if (after <= 0 || this.ctx.closed) return [];
    const offloaded: string[] = [];
    for (const i of await this.ctx.deps.instances.list({ status: ['shelved'] })) {
      if (i.taskState !== null || !i.shelved || i.shelved.at + after > this.ctx.now()) continue;
      if (this.ctx.builds.has(i.id) || this.ctx.deletes.has(i.id)) continue;
      try {
        await this.offload(i.id);
        offloaded.push(i.id);
      } catch {
        // changed meanwhile, or failed with a fault recorded: the next pass decides
      }
    }
    return offloaded;
  }

  /**
   * Brings a shelved instance back: powered on where it is, or (offloaded) placed like a create and
   * booted from its shelve snapshot, which is removed from the image service once it runs.
   * @throws InvalidStateError; InstanceLockedError; NotFoundError (the snapshot image);
   * NoValidHostError; DriverError (the instance stays shelved, nothing held)
   */
  async unshelve(id: string, request?: RequestContext): Promise<Instance> {
    if (this.ctx.closed) throw new EngineClosedError('unshelve');
    const instance = await instanceFor(this.ctx, id, 'unshelve', request);
    const info = instance.shelved;
    if (!info) throw conflictOf('unshelve', instance);
    const { deps } = this.ctx;
    const snapshot = await deps.images.get(info.imageId);
    if (!snapshot && instance.vmState === 'shelved_offloaded')
      throw new NotFoundError('image', info.imageId, 'imageId');
    const taken = await takeTask(this.ctx, instance, 'unshelve', request);
    try {
      const result =
        instance.vmState === 'shelved'
          ? await this.powerOnInPlace(taken.working, taken)
          : await this.spawnElsewhere(taken.working, taken, snapshot!);
      if (result?.vmState === 'active' && snapshot)
        await deps.images.remove(snapshot.id).catch(() => undefined);
      return result ?? (await deps.instances.get(id)) ?? taken.working;
    } finally {
      taken.done();
    }
  }

  private async powerOnInPlace(
    working: Instance,
    taken: { record: Parameters<typeof endTask>[3]; task: import('./deadline.js').TaskControl },
  ): Promise<Instance | undefined> {
    const hostId = working.hostId!;
    const driver = this.ctx.deps.registry.driverFor(hostId);
    try {
      if (supportsPowerControl(driver)) {
        await this.ctx.callDriver(
          'power',
          { operation: 'powerOn', instanceId: working.id, hostId },
          taken.task,
          (_, call) => driver.powerOn(working, callOf(call)),
        );
      }
    } catch (e) {
      const fault = faultOf(e, this.ctx.now(), { hostId });
      await endTask(this.ctx, working, 'unshelving', taken.record, {}, fault);
      throw driverFailure(
        e,
        { driver: driver.kind, operation: 'unshelve', instanceId: working.id, hostId },
        fault.message,
      );
    }
    return endTask(
      this.ctx,
      working,
      'unshelving',
      taken.record,
      { vmState: 'active', powerState: 'running', shelved: null },
      null,
    );
  }

  private async spawnElsewhere(
    working: Instance,
    taken: { record: Parameters<typeof endTask>[3]; task: import('./deadline.js').TaskControl },
    snapshot: Image,
  ): Promise<Instance | undefined> {
    const { deps } = this.ctx;
    let selection: Selection;
    try {
      selection = await placeExisting(this.ctx, working, {
        flavor: working.flavor,
        image: snapshot,
        requestId: taken.record.requestId,
      });
    } catch (e) {
      await endTask(this.ctx, working, 'unshelving', taken.record, {}, faultOf(e, this.ctx.now()));
      throw e;
    }
    const hostId = selection.hostId;
    const target: Instance = { ...working, hostId };
    try {
      await this.ctx.callDriver(
        'spawn',
        { operation: 'spawn', instanceId: working.id, hostId },
        taken.task,
        async (d, call) =>
          d.spawn({
            instance: target,
            flavor: working.flavor,
            image: snapshot,
            images: deps.images,
            ...(await devicesOnHost(this.ctx, target, hostId)),
            ...callOf(call),
          }),
      );
    } catch (e) {
      deps.scheduler.buildFinished?.(selection.claim);
      await this.ctx
        .callDriver(
          'destroy',
          { operation: 'destroy', instanceId: working.id, hostId },
          undefined,
          (d, call) => d.destroy(target, call),
        )
        .catch(() => undefined);
      await deps.scheduler.release(selection.claim);
      const fault = faultOf(e, this.ctx.now(), { hostId });
      await endTask(this.ctx, working, 'unshelving', taken.record, {}, fault);
      throw driverFailure(
        e,
        {
          driver: deps.registry.driverFor(hostId).kind,
          operation: 'unshelve',
          instanceId: working.id,
          hostId,
        },
        fault.message,
      );
    }
    deps.scheduler.buildFinished?.(selection.claim);
    const zone = selection.availabilityZone ?? (await deps.hosts.get(hostId))?.availabilityZone;
    const done = await endTask(
      this.ctx,
      working,
      'unshelving',
      taken.record,
      {
        hostId,
        availabilityZone: zone ?? working.availabilityZone,
        vmState: 'active',
        powerState: 'running',
        shelved: null,
        launchedAt: this.ctx.now(),
      },
      null,
    );
    if (!done) {
      // a delete took it over: what was built goes
      await deps.registry
        .driverFor(hostId)
        .destroy(target)
        .catch(() => undefined);
      await deps.scheduler.release(selection.claim);
    }
    return done;
  }
}
