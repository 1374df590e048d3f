import { InvalidStateError, NotFoundError, RevisionConflictError } from '../errors.js';
import type { Instance, InstancePatch } from '../model/instance.js';
import { type ComputeDriver, callAbortState, type DriverCallOptions } from '../ports/driver.js';
import type { EngineContext } from './engine-context.js';
import type { HotPluggable, HotPlugKind } from './hot-plug-flow.js';

/**
 * One attach of one device, run as its task's operation: the adapter acquires the device, the
 * instance records it as `attaching`, the driver plugs it in. Whatever the attempt acquired is
 * released once, by the attempt itself, on every way it can fail:
 *
 * - the adapter refuses: nothing was acquired (the kind's `acquire` leaves nothing), nothing is
 *   released;
 * - the driver fails, or a delete takes the task over before the mark is written: released;
 * - the deadline passes while the adapter works: released once the adapter answers, never
 *   recorded nor plugged in;
 * - the deadline passes while the driver plugs: the task ends with its fault, but the device
 *   stays recorded as `attaching` until the driver answers; then it is unplugged (whatever the
 *   answer: a late failure may be a forwarding layer's own deadline, and the unplug is
 *   idempotent), released, and the record goes (Nova's rollback of a failed attach). An engine
 *   that dies before leaves the mark to the reconciliation ({@link undoAttach}).
 *
 * The attempt counts itself in `EngineContext.attachesInFlight` until it has ended, late ones
 * included, so the reconciliation leaves its mark alone.
 */
export class AttachAttempt<Req, R extends HotPluggable, D extends ComputeDriver> {
  /** The device as the driver plugged it in, once it has (in time). */
  private plugged: R | undefined;
  /** The key of the device recorded as `attaching`, once it is. */
  private markedKey: string | undefined;
  /** Set once the operation has ended, undo included. */
  private ended = false;

  constructor(
    private readonly ctx: EngineContext,
    private readonly kind: HotPlugKind<Req, R, D>,
    private readonly hostId: string,
    private readonly req: Req,
  ) {}

  /** The task's operation (`ActionFlow.runChecked`); `call` tells whether the task gave up on it. */
  async run(driver: D, working: Instance, call: DriverCallOptions): Promise<void> {
    const inFlight = this.ctx.attachesInFlight;
    inFlight.set(working.id, (inFlight.get(working.id) ?? 0) + 1);
    try {
      await this.steps(driver, working, call);
    } finally {
      this.ended = true;
      const left = (inFlight.get(working.id) ?? 1) - 1;
      if (left > 0) inFlight.set(working.id, left);
      else inFlight.delete(working.id);
    }
  }

  /** The device list written with the stable state when the attach succeeded: the plugged record, unmarked. */
  recordPlugged(current: Instance): InstancePatch {
    const { kind } = this;
    const plugged = this.plugged!;
    const key = kind.keyOf(plugged);
    return kind.record([...kind.recorded(current).filter((d) => kind.keyOf(d) !== key), plugged]);
  }

  /**
   * The device list written with the fault when the task failed: without this attempt's mark once
   * the attempt has ended (it released the device); as it is while the attempt still runs past its
   * deadline (the attempt drops its mark itself when the driver answers).
   */
  recordFailed(current: Instance): InstancePatch {
    if (!this.ended || this.markedKey === undefined) return {};
    return this.kind.record(this.kind.recorded(current).filter((d) => !this.isMark(d)));
  }

  private async steps(driver: D, working: Instance, call: DriverCallOptions): Promise<void> {
    const { kind } = this;
    const device = await kind.acquire(working, this.hostId, this.req);
    // the deadline passed while the adapter worked: the task has ended without this device
    if (abandoned(call)) return this.release(working, device);
    // recorded as attaching before it is plugged in: an engine that dies from here on leaves a
    // record the reconciliation unplugs and releases
    const marked = await this.ctx.applyAsTaskOwner(working, working.taskState, (current) =>
      kind.record([...kind.recorded(current), { ...device, attaching: true }]),
    );
    if (!marked) {
      // the task is gone (its deadline passed, or a delete took it over): never recorded
      await this.release(working, device);
      if (abandoned(call)) return;
      throw new InvalidStateError({
        instanceId: working.id,
        action: kind.attachAction,
        vmState: working.vmState,
        taskState: working.taskState,
        powerState: working.powerState,
      });
    }
    this.markedKey = kind.keyOf(device);
    if (abandoned(call)) return this.settleLate(marked, device, false);
    let plugged: R;
    try {
      plugged = (await kind.plug(driver, working, device)) ?? device;
    } catch (e) {
      // a late failure is unplugged too: it may be the deadline of a call the driver forwards (an
      // agent's RPC), which says nothing of what the hypervisor did
      if (abandoned(call)) return this.settleLate(marked, device, true);
      await this.release(marked, device);
      // the task's failure write drops the mark (recordFailed), unless the deadline passed
      // during the release: that write then kept it
      if (abandoned(call)) return this.unmark(marked);
      throw e;
    }
    if (abandoned(call)) return this.settleLate(marked, plugged, true);
    this.plugged = plugged;
  }

  /**
   * The task ended on its deadline before this attempt was done: the device is undone (unplugged
   * when the driver was asked to plug it, then released) and its mark dropped; one whose undo
   * failed stays recorded, unmarked, so a detach can retry it.
   */
  private async settleLate(marked: Instance, device: R, plugged: boolean): Promise<void> {
    const undone = await undoAttach(this.ctx, this.kind, marked, this.hostId, device, plugged);
    await this.unmark(marked, undone ? undefined : device);
  }

  /**
   * Drops this attempt's mark from the instance as it is now, whatever task it has (retrying lost
   * updates): the device goes from the record, or stays as `keep`, unmarked.
   */
  private async unmark(marked: Instance, keep?: R): Promise<void> {
    const { kind } = this;
    const kept: R[] = [];
    if (keep) {
      const { attaching: _, ...plain } = keep;
      kept.push(plain as R);
    }
    let current: Instance | undefined = marked;
    for (let attempt = 0; attempt < 20 && current; attempt++) {
      // a delete removes the record (at the revision it took over) and releases everything
      if (current.taskState === 'deleting') return;
      const devices = kind.recorded(current).filter((d) => !this.isMark(d));
      try {
        await this.ctx.apply(current, kind.record([...devices, ...kept]));
        return;
      } catch (e) {
        if (e instanceof NotFoundError) return;
        if (!(e instanceof RevisionConflictError)) throw e;
        current = await this.ctx.deps.instances.get(marked.id);
      }
    }
  }

  private isMark(d: R): boolean {
    return d.attaching === true && this.kind.keyOf(d) === this.markedKey;
  }

  /** Releases a device this attempt acquired; a failure leaves nothing the engine could do better. */
  private async release(instance: Instance, device: R): Promise<void> {
    await this.kind.release(instance, this.hostId, this.kind.keyOf(device)).catch(() => undefined);
  }
}

/** Whether the task gave up on its operation (its deadline passed, or a delete took it over). */
function abandoned(call: DriverCallOptions): boolean {
  if (call[callAbortState]) return call[callAbortState]() !== undefined;
  return call.signal?.aborted ?? false;
}

/**
 * Undoes the attach of `device` to `instance` on `hostId`: the driver unplugs it (when it may
 * have gone in; the unplug is idempotent, and a no-op for a device that never did), with the
 * power deadline, then the adapter releases it. Resolves false, releasing nothing more, when the
 * unplug or the release fails (the device may still be in the guest; a detach can retry it).
 */
export async function undoAttach<Req, R extends HotPluggable, D extends ComputeDriver>(
  ctx: EngineContext,
  kind: HotPlugKind<Req, R, D>,
  instance: Instance,
  hostId: string,
  device: R,
  plugged: boolean,
): Promise<boolean> {
  const { attaching: _, ...plain } = device;
  try {
    if (plugged) {
      const driver = ctx.deps.registry.has(hostId) ? ctx.deps.registry.driverFor(hostId) : undefined;
      if (!driver || !kind.supports(driver)) throw new Error(`no ${kind.noun} hot-plug on ${hostId}`);
      await ctx.callDriver(
        'power',
        { operation: kind.detachAction, instanceId: instance.id, hostId },
        undefined,
        () => kind.unplug(driver, instance, plain as R),
      );
    }
    await kind.release(instance, hostId, kind.keyOf(device));
    return true;
  } catch {
    return false;
  }
}
