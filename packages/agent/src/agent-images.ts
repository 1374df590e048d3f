import {
  DriverError,
  type DriverErrorDetails,
  type Image,
  type ImageImport,
  type ImageService,
  type ImageSource,
  type LocalArtifact,
  type LocalImageService,
} from '@nova-lfs/core';
import type { AgentImageCache } from './agent-image-cache.js';
import type { ImageArtifact, LinkedArtifact } from './driver-protocol.js';
import { imageFetchFailure } from './errors.js';

/** The images one call names, as the control plane sent them. */
export interface CallImages {
  readonly image: Image;
  /** The image's artifact (absent when the control plane sent none: the agent said it needs no bytes). */
  readonly artifact?: ImageArtifact;
  /** The kernel and initrd the image names, as the control plane's artifacts. */
  readonly linked?: readonly LinkedArtifact[];
  readonly driver: string;
  readonly hostId: string;
  readonly instanceId: string;
}

/**
 * The image service a driver sees inside one agent call. Images come from the control plane:
 * - the call's image (and the kernel and initrd it names): `get` answers its record and
 *   `acquire` a verified local copy from the agent's own cache, fetched from the control plane
 *   over the bus when it is not there yet ({@link AgentImageCache});
 * - images a driver writes (snapshots) are staged in the agent's own `staging` service, from
 *   where the control plane reads them (`driver.snapshotRead`) and then asks the agent to
 *   release them.
 * A failed acquire is a `DriverError` naming the image (`imageId`) and why (`imageFetch`:
 * `missing`, `checksum`, `connection`, `invalid`), with the typed error as its cause.
 */
export function agentCallImages(
  staging: LocalImageService,
  cache: AgentImageCache,
  call: CallImages | undefined,
): ImageService {
  const linked = new Map((call?.linked ?? []).map((l) => [l.image.id, l]));
  return {
    async get(id: string): Promise<Image | undefined> {
      if (call && id === call.image.id) return call.image;
      return linked.get(id)?.image ?? staging.get(id);
    },
    async list(): Promise<Image[]> {
      return [
        ...(call ? [call.image] : []),
        ...[...linked.values()].map((l) => l.image),
        ...(await staging.list()),
      ];
    },
    import(meta: ImageImport, source: ImageSource): Promise<Image> {
      return staging.import(meta, source);
    },
    register(
      meta: ImageImport & { sha256: string; sizeBytes?: number },
      source: ImageSource,
    ): Promise<Image> {
      return staging.register(meta, source);
    },
    async acquire(id: string): Promise<LocalArtifact> {
      const link = linked.get(id);
      if (!call || (id !== call.image.id && !link)) return staging.acquire(id);
      const details: DriverErrorDetails = {
        driver: call.driver,
        operation: 'image acquire',
        instanceId: call.instanceId,
        hostId: call.hostId,
      };
      const image = link ? link.image : call.image;
      const artifact = link ?? call.artifact;
      if (!artifact) {
        throw new DriverError(
          { ...details, retryable: false },
          `image ${id}: the control plane sent no artifact (the agent reported that it needs none)`,
        );
      }
      try {
        return await cache.acquire(image, artifact);
      } catch (e) {
        throw imageFetchFailure(e, { ...details, imageId: id, servedBy: artifact.servedBy });
      }
    },
    async remove(id: string): Promise<void> {
      if ((call && id === call.image.id) || linked.has(id)) return;
      await staging.remove(id);
    },
  };
}
