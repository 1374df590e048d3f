import { z } from 'zod';
import { ConfigurationError, NotFoundError, ValidationError } from '../errors.js';
import type { RequestContext } from '../model/action.js';
import type { AttachedVolume, Instance } from '../model/instance.js';
import { idSchema } from '../model/names.js';
import { parseInput } from '../model/validation.js';
import { supportsVolumeAttach } from '../ports/driver.js';
import type { BlockDevice } from '../ports/volume.js';
import type { ActionFlow } from './action-flow.js';
import type { EngineContext } from './engine-context.js';

/** What `compute.attachVolume` takes. */
export const volumeAttachRequestSchema = z.strictObject({
  /** The volume, as the engine's VolumeAdapter names it. */
  volumeId: idSchema,
  /** Guest device (`vdb`, or Nova's `/dev/vdb`); the driver picks a free one when omitted. */
  device: z
    .string()
    .regex(/^(?:\/dev\/)?(?:vd|sd|hd|xvd)[a-z]{1,2}$/, 'a disk device name such as vdb or /dev/vdb')
    .transform((d) => d.replace(/^\/dev\//, ''))
    .optional(),
});
/** What `compute.attachVolume` takes. */
export type VolumeAttachRequest = z.input<typeof volumeAttachRequestSchema>;

/** The record kept of a connected device. */
export function attachedVolumeOf(device: BlockDevice): AttachedVolume {
  return {
    volumeId: device.volumeId,
    ...(device.device ? { device: device.device } : {}),
    connection: { ...device.connection },
  };
}

function alreadyAttached(volumeId: string, instanceId: string): ValidationError {
  return new ValidationError([
    {
      path: 'volumeId',
      rule: 'attached',
      message: `volume ${volumeId} is already attached to instance ${instanceId}`,
    },
  ]);
}

/** The device a detach hands the driver: the one the attach plugged in. */
function blockDeviceOf(volume: AttachedVolume): BlockDevice {
  return {
    volumeId: volume.volumeId,
    ...(volume.device ? { device: volume.device } : {}),
    connection: volume.connection,
  };
}

/**
 * Volumes attached to and detached from an instance that runs (or is paused or stopped) on its
 * host (Nova's `os-volume_attachments`): the VolumeAdapter connects the volume on the instance's
 * host, the driver hot-plugs it (`VolumeAttachable`), and the instance records it, so that a detach
 * unplugs the same device and a delete disconnects it. One task at a time, as for every action.
 *
 * The state, the lock, the driver's capability and a volume already attached are refused before
 * anything changes. The adapter is asked within the task (so that two attaches racing on one
 * instance cannot undo each other); its refusals (an unknown volume, one attached elsewhere) and a
 * driver failure end the action with the fault, leave nothing connected and the instance as it was.
 */
export class VolumeAttachFlow {
  constructor(
    private readonly ctx: EngineContext,
    private readonly actions: ActionFlow,
  ) {}

  /** See `ComputeEngine.attachVolume`. */
  async attach(id: string, input: VolumeAttachRequest, request?: RequestContext): Promise<Instance> {
    const req = parseInput(volumeAttachRequestSchema, input);
    const checked = await this.actions.precheck(id, 'attach_volume', supportsVolumeAttach, request);
    const { instance, hostId } = checked;
    if (instance.volumes?.some((v) => v.volumeId === req.volumeId)) throw alreadyAttached(req.volumeId, id);
    let connecting = false;
    let attached: AttachedVolume | undefined;
    // connected inside the task: a second attach racing this one is refused when it takes the
    // task, before it could disconnect what this one plugged in
    const attaching = this.actions.runChecked(
      checked,
      async (driver, working) => {
        // checked again on the instance as the task took it: an attach that won a race is kept
        if (working.volumes?.some((v) => v.volumeId === req.volumeId))
          throw alreadyAttached(req.volumeId, id);
        connecting = true;
        const device = await this.connect(working, hostId, req);
        try {
          await driver.attachVolume(working, device);
        } catch (e) {
          await this.ctx.deps.volumes.disconnect(working, hostId, [req.volumeId]).catch(() => undefined);
          throw e;
        }
        attached = attachedVolumeOf(device);
      },
      request,
      (working) => ({
        volumes: [
          ...(working.volumes ?? []).filter((v) => v.volumeId !== req.volumeId),
          ...(attached ? [attached] : []),
        ],
      }),
      'power',
    );
    return attaching.catch(async (e: unknown) => {
      // a deadline can end the task while the adapter or the driver still works: what was not
      // recorded must not stay connected (the disconnect is idempotent)
      if (connecting && !attached)
        await this.ctx.deps.volumes.disconnect(instance, hostId, [req.volumeId]).catch(() => undefined);
      throw e;
    });
  }

  /** Asks the adapter for the volume's device on the host (nothing is left connected on a refusal). */
  private async connect(
    instance: Instance,
    hostId: string,
    req: z.output<typeof volumeAttachRequestSchema>,
  ): Promise<BlockDevice> {
    const volumes = this.ctx.deps.volumes;
    const devices = await volumes.connect(instance, hostId, [
      { volumeId: req.volumeId, ...(req.device ? { device: req.device } : {}) },
    ]);
    const device = devices[0];
    if (device && devices.length === 1 && device.volumeId === req.volumeId) return device;
    await volumes.disconnect(instance, hostId, [req.volumeId]).catch(() => undefined);
    throw new ConfigurationError(
      'volumes',
      `the engine's volume adapter connected ${devices.length} devices for volume ${req.volumeId} (is a VolumeAdapter configured?)`,
    );
  }

  /** See `ComputeEngine.detachVolume`. */
  async detach(id: string, volumeId: string, request?: RequestContext): Promise<Instance> {
    const { volumeId: checkedId } = parseInput(z.strictObject({ volumeId: idSchema }), { volumeId });
    const checked = await this.actions.precheck(id, 'detach_volume', supportsVolumeAttach, request);
    const { instance, hostId } = checked;
    const attached = instance.volumes?.find((v) => v.volumeId === checkedId);
    if (!attached) throw new NotFoundError('volume attachment', checkedId, 'volumeId');
    return this.actions.runChecked(
      checked,
      async (driver, working) => {
        await driver.detachVolume(working, blockDeviceOf(attached));
        await this.ctx.deps.volumes.disconnect(working, hostId, [checkedId]);
      },
      request,
      (working) => ({ volumes: (working.volumes ?? []).filter((v) => v.volumeId !== checkedId) }),
      'power',
    );
  }
}
