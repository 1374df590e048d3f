import { access, constants } from 'node:fs/promises';
import {
  DriverError,
  type Image,
  type ImageImport,
  type ImageService,
  type ImageSource,
  type LocalArtifact,
  type LocalImageService,
} from '@nova-lfs/core';
import type { LinkedArtifact } from './driver-protocol.js';

/**
 * The image service a driver sees inside one agent call. Images come from the control plane:
 * - the spawn's image (and the kernel and initrd it names): `get` answers its record and
 *   `acquire` the control plane's verified artifact, read by path from the control plane's image cache directory on this machine (the
 *   control plane checked its sha256 when it cached it);
 * - images a driver writes (snapshots) are staged in the agent's own `staging` service, from
 *   where the control plane imports them by path and then asks the agent to release them.
 */
export function agentCallImages(
  staging: LocalImageService,
  spawn:
    | {
        image: Image;
        artifactPath?: string;
        /** The kernel and initrd the image names, as the control plane's artifacts. */
        linked?: readonly LinkedArtifact[];
        driver: string;
        hostId: string;
        instanceId: string;
      }
    | undefined,
): ImageService {
  const linked = new Map((spawn?.linked ?? []).map((l) => [l.image.id, l]));
  return {
    async get(id: string): Promise<Image | undefined> {
      if (spawn && id === spawn.image.id) return spawn.image;
      return linked.get(id)?.image ?? staging.get(id);
    },
    async list(): Promise<Image[]> {
      return [
        ...(spawn ? [spawn.image] : []),
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
      if (!spawn || (id !== spawn.image.id && !link)) return staging.acquire(id);
      const details = {
        driver: spawn.driver,
        operation: 'image acquire',
        instanceId: spawn.instanceId,
        hostId: spawn.hostId,
      };
      const image = link ? link.image : spawn.image;
      const path = link ? link.path : spawn.artifactPath;
      if (!path) {
        throw new DriverError(
          { ...details, retryable: false },
          `image ${id}: the control plane sent no artifact (the agent reported that it needs none)`,
        );
      }
      try {
        await access(path, constants.R_OK);
      } catch (cause) {
        // another host sharing the control plane's machine may read it: let the build move on
        throw new DriverError(
          { ...details, retryable: false, reschedule: true },
          `image ${id}: artifact ${path} is not readable on this host (agents share the control plane's image cache directory)`,
          { cause },
        );
      }
      return { image, path };
    },
    async remove(id: string): Promise<void> {
      if ((spawn && id === spawn.image.id) || linked.has(id)) return;
      await staging.remove(id);
    },
  };
}
