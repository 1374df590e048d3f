import { z } from 'zod';
import { NotFoundError, ValidationError } from '../errors.js';
import type { RequestContext, TaskActionName } from '../model/action.js';
import type { Instance, InstancePatch } from '../model/instance.js';
import { idSchema } from '../model/names.js';
import { parseInput } from '../model/validation.js';
import type { ComputeDriver } from '../ports/driver.js';
import type { ActionFlow, CapabilityCheck } from './action-flow.js';
import { AttachAttempt, undoAttach } from './attach-attempt.js';
import type { EngineContext } from './engine-context.js';

/**
 * A recorded device: `attaching` from the moment the adapter acquired it until its attach has
 * ended (past the task's deadline, until the driver's late answer has been undone).
 */
export interface HotPluggable {
  readonly attaching?: true;
}

/**
 * One kind of device an instance gets and loses while it runs (volumes, network ports): how the
 * engine's adapter acquires it on the host, how the driver plugs it, and where the instance
 * records it. `R` is the record, which is also what the driver is handed.
 */
export interface HotPlugKind<Req, R extends HotPluggable, D extends ComputeDriver> {
  readonly attachAction: TaskActionName;
  readonly detachAction: TaskActionName;
  readonly supports: CapabilityCheck<D>;
  /** The field naming a device in requests and errors (`volumeId`, `portId`). */
  readonly field: string;
  /** What a device is called in messages (`volume`, `port`). */
  readonly noun: string;
  /** The devices an instance records. */
  recorded(instance: Instance): readonly R[];
  /** The patch recording `devices` on the instance. */
  record(devices: R[]): InstancePatch;
  /** A device's id. */
  keyOf(device: R): string;
  /** The id of the device a request names, when it names one before the adapter is asked. */
  requestedKey(req: Req): string | undefined;
  /** Acquires the device on the host (nothing stays acquired when it throws). */
  acquire(instance: Instance, hostId: string, req: Req): Promise<R>;
  /** Releases a device; idempotent. */
  release(instance: Instance, hostId: string, key: string): Promise<void>;
  /** Plugs the device in; resolves the record to keep when the driver told more (the device it chose). */
  plug(driver: D, instance: Instance, device: R): Promise<R | undefined>;
  /** Unplugs the device; idempotent (a device that is not plugged in is a no-op). */
  unplug(driver: D, instance: Instance, device: R): Promise<void>;
}

/**
 * Attach and detach of one kind of device as engine actions (Nova's `os-volume_attachments` and
 * `os-interface`): the state, the lock, the driver's capability and a device already attached are
 * refused before anything changes (ActionFlow's pre-checks); the adapter is asked within the task,
 * so two attaches racing on one instance cannot undo each other; the device is recorded on the
 * instance, so that a detach unplugs the same one and a delete releases it. An adapter refusal, a
 * driver failure or the deadline (`timeouts.power`) ends the action with the fault and leaves
 * nothing acquired nor plugged in, each device released once (see {@link AttachAttempt}: past the
 * deadline a plug still under way is undone when the driver answers).
 */
export class HotPlugFlow<Req, R extends HotPluggable, D extends ComputeDriver> {
  constructor(
    private readonly ctx: EngineContext,
    private readonly actions: ActionFlow,
    private readonly kind: HotPlugKind<Req, R, D>,
  ) {}

  /** Attaches the device `req` asks for (already parsed) and resolves the instance as recorded. */
  async attach(id: string, req: Req, request?: RequestContext): Promise<Instance> {
    const kind = this.kind;
    const checked = await this.actions.precheck(id, kind.attachAction, kind.supports, request);
    const key = kind.requestedKey(req);
    if (key !== undefined) this.refuseAttached(checked.instance, key);
    const attempt = new AttachAttempt(this.ctx, kind, checked.hostId, req);
    return this.actions.runChecked(
      checked,
      (driver, working, call) => {
        // checked again on the instance as the task took it: an attach that won a race is kept
        if (key !== undefined) this.refuseAttached(working, key);
        return attempt.run(driver, working, call);
      },
      {
        ...(request ? { request } : {}),
        deadline: 'power',
        extraPatch: (current) => attempt.recordPlugged(current),
        failurePatch: (current) => attempt.recordFailed(current),
      },
    );
  }

  /** Detaches the recorded device `key`: the driver unplugs it, then the adapter releases it. */
  async detach(id: string, key: string, request?: RequestContext): Promise<Instance> {
    const kind = this.kind;
    const checkedKey = parseInput(z.strictObject({ [kind.field]: idSchema }), { [kind.field]: key })[
      kind.field
    ] as string;
    const checked = await this.actions.precheck(id, kind.detachAction, kind.supports, request);
    const device = kind.recorded(checked.instance).find((d) => kind.keyOf(d) === checkedKey);
    if (!device) throw new NotFoundError(`${kind.noun} attachment`, checkedKey, kind.field);
    return this.actions.runChecked(
      checked,
      async (driver, working) => {
        await kind.unplug(driver, working, device);
        await kind.release(working, checked.hostId, checkedKey);
      },
      {
        ...(request ? { request } : {}),
        extraPatch: (current) =>
          kind.record(kind.recorded(current).filter((d) => kind.keyOf(d) !== checkedKey)),
      },
    );
  }

  private refuseAttached(instance: Instance, key: string): void {
    if (!this.kind.recorded(instance).some((d) => this.kind.keyOf(d) === key)) return;
    throw new ValidationError([
      {
        path: this.kind.field,
        rule: 'attached',
        message: `${this.kind.noun} ${key} is already attached to instance ${instance.id}`,
      },
    ]);
  }
}

/**
 * Undoes the attaches a dead engine left marked on `instance` (its task `attaching_*` is stale, or
 * its task ended on a deadline before the driver answered): each device still marked `attaching`
 * is unplugged (the driver's unplug is idempotent, a device never plugged in is a no-op) and
 * released ({@link undoAttach}). Resolves the patch that drops them; a device whose unplug or
 * release fails stays recorded, unmarked, so a detach can retry it.
 */
export async function undoInterruptedAttach<Req, R extends HotPluggable, D extends ComputeDriver>(
  ctx: EngineContext,
  kind: HotPlugKind<Req, R, D>,
  instance: Instance,
): Promise<InstancePatch> {
  const recorded = kind.recorded(instance);
  if (!recorded.some((d) => d.attaching) || !instance.hostId) return {};
  const kept: R[] = [];
  for (const device of recorded) {
    if (!device.attaching) {
      kept.push(device);
      continue;
    }
    if (await undoAttach(ctx, kind, instance, instance.hostId, device, true)) continue;
    const { attaching: _, ...plain } = device;
    kept.push(plain as R);
  }
  return kind.record(kept);
}
