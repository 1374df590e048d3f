import type { Instance } from '../model/instance.js';
import type { PortBinding } from '../ports/network.js';
import type { BlockDevice } from '../ports/volume.js';
import type { EngineContext } from './engine-context.js';

/**
 * The volumes and ports an instance records, as a guest re-created on `hostId` gets them (a
 * resize or cold migration's destination, an unshelve, an evacuation): the VolumeAdapter connects
 * the recorded volumes on that host (idempotent for a volume already connected to the instance;
 * a host-aware adapter hands back that host's connection), the ports are the recorded bindings.
 */
export async function devicesOnHost(
  ctx: EngineContext,
  instance: Instance,
  hostId: string,
): Promise<{ volumes: BlockDevice[]; ports: PortBinding[] }> {
  const recorded = instance.volumes ?? [];
  const volumes = recorded.length
    ? await ctx.deps.volumes.connect(
        instance,
        hostId,
        recorded.map((v) => ({ volumeId: v.volumeId, ...(v.device ? { device: v.device } : {}) })),
      )
    : [];
  return { volumes, ports: [...(instance.ports ?? [])] };
}
