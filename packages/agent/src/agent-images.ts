import {
  DriverError,
  type Image,
  type ImageImport,
  type ImageService,
  type ImageSource,
  type LocalArtifact,
  type LocalImageService,
} from '@nova-lfs/core';

/** The images one call names, with the verified local copies the agent made of them. */
export interface CallImages {
  readonly image: Image;
  /** The kernel and initrd the image names. */
  readonly linked: readonly Image[];
  /**
   * Verified local copies by image id, fetched before the driver runs (absent when the control
   * plane sent no artifacts: the agent said it needs no bytes).
   */
  readonly ready: ReadonlyMap<string, LocalArtifact>;
  readonly driver: string;
  readonly hostId: string;
  readonly instanceId: string;
}

/**
 * The image service a driver sees inside one agent call. Images come from the control plane:
 * - the call's image (and the kernel and initrd it names): `get` answers its record and
 *   `acquire` the verified local copy the agent fetched into its own cache before the call
 *   reached the driver (`AgentImageCache`);
 * - images a driver writes (snapshots) are staged in the agent's own `staging` service, from
 *   where the control plane reads them (`driver.snapshotRead`) and then asks the agent to
 *   release them.
 */
export function agentCallImages(staging: LocalImageService, call: CallImages | undefined): ImageService {
  const linked = new Map((call?.linked ?? []).map((l) => [l.id, l]));
  return {
    async get(id: string): Promise<Image | undefined> {
      if (call && id === call.image.id) return call.image;
      return linked.get(id) ?? staging.get(id);
    },
    async list(): Promise<Image[]> {
      return [...(call ? [call.image] : []), ...linked.values(), ...(await staging.list())];
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
      const local = call.ready.get(id);
      if (!local) {
        throw new DriverError(
          {
            driver: call.driver,
            operation: 'image acquire',
            instanceId: call.instanceId,
            hostId: call.hostId,
            retryable: false,
          },
          `image ${id}: the control plane sent no artifact (the agent reported that it needs none)`,
        );
      }
      return local;
    },
    async remove(id: string): Promise<void> {
      if ((call && id === call.image.id) || linked.has(id)) return;
      await staging.remove(id);
    },
  };
}
