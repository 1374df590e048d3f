import { z } from 'zod';
import { ConfigurationError } from '../errors.js';
import type { RequestContext } from '../model/action.js';
import type { AttachedVolume, Instance } from '../model/instance.js';
import { idSchema } from '../model/names.js';
import { parseInput } from '../model/validation.js';
import { type ComputeDriver, supportsVolumeAttach, type VolumeAttachable } from '../ports/driver.js';
import type { BlockDevice, VolumeAdapter } from '../ports/volume.js';
import type { ActionFlow } from './action-flow.js';
import type { EngineContext } from './engine-context.js';
import { HotPlugFlow, type HotPlugKind } from './hot-plug-flow.js';

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

/**
 * Volumes attached to and detached from an instance that runs (or is paused or stopped) on its
 * host (Nova's `os-volume_attachments`): the VolumeAdapter connects the volume on the instance's
 * host, the driver hot-plugs it (`VolumeAttachable`), and `instance.volumes` records the block
 * device (the same one a detach hands the driver). The adapter's refusals (an unknown volume, one
 * attached elsewhere) and a driver failure leave nothing connected; see {@link HotPlugFlow}.
 */
export class VolumeAttachFlow {
  private readonly flow: HotPlugFlow<VolumeAttachInput, AttachedVolume, ComputeDriver & VolumeAttachable>;

  constructor(ctx: EngineContext, actions: ActionFlow) {
    this.flow = new HotPlugFlow(ctx, actions, volumeHotPlug(ctx));
  }

  /** See `ComputeEngine.attachVolume`. */
  attach(id: string, input: VolumeAttachRequest, request?: RequestContext): Promise<Instance> {
    return this.flow.attach(id, parseInput(volumeAttachRequestSchema, input), request);
  }

  /** See `ComputeEngine.detachVolume`. */
  detach(id: string, volumeId: string, request?: RequestContext): Promise<Instance> {
    return this.flow.detach(id, volumeId, request);
  }
}

type VolumeAttachInput = z.output<typeof volumeAttachRequestSchema>;

/** Volumes as a hot-plugged kind of device: the engine's VolumeAdapter and `VolumeAttachable`. */
export function volumeHotPlug(
  ctx: EngineContext,
): HotPlugKind<VolumeAttachInput, AttachedVolume, ComputeDriver & VolumeAttachable> {
  const volumes = () => ctx.deps.volumes;
  return {
    attachAction: 'attach_volume',
    detachAction: 'detach_volume',
    supports: supportsVolumeAttach,
    field: 'volumeId',
    noun: 'volume',
    recorded: (i) => i.volumes ?? [],
    record: (devices) => ({ volumes: devices }),
    keyOf: (v) => v.volumeId,
    requestedKey: (req) => req.volumeId,
    acquire: (instance, hostId, req) => connectOne(volumes(), instance, hostId, req),
    release: (instance, hostId, volumeId) => volumes().disconnect(instance, hostId, [volumeId]),
    plug: async (driver, instance, device) => {
      const used = await driver.attachVolume(instance, device);
      return used ? { ...device, device: used } : device;
    },
    unplug: (driver, instance, device) => driver.detachVolume(instance, device),
  };
}

/** The record kept of a connected device: a copy of the adapter's block device. */
export function attachedVolumeOf(device: BlockDevice): AttachedVolume {
  return {
    volumeId: device.volumeId,
    ...(device.device ? { device: device.device } : {}),
    connection: { ...device.connection },
  };
}

/** Asks the adapter for the volume's device on the host (nothing is left connected on a refusal). */
async function connectOne(
  volumes: VolumeAdapter,
  instance: Instance,
  hostId: string,
  req: VolumeAttachInput,
): Promise<AttachedVolume> {
  const devices = await volumes.connect(instance, hostId, [
    { volumeId: req.volumeId, ...(req.device ? { device: req.device } : {}) },
  ]);
  const device = devices[0];
  if (device && devices.length === 1 && device.volumeId === req.volumeId) return attachedVolumeOf(device);
  await volumes.disconnect(instance, hostId, [req.volumeId]).catch(() => undefined);
  throw new ConfigurationError(
    'volumes',
    `the engine's volume adapter connected ${devices.length} devices for volume ${req.volumeId} (is a VolumeAdapter configured?)`,
  );
}
