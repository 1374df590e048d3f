import type { Image, ImageService } from '@nova-lfs/core';
import type Dockerode from 'dockerode';
import { dockerStatus, wrapDockerError } from './errors.js';
import { imageReference } from './labels.js';

/**
 * Loads images from core's image cache into dockerd offline (Engine API image import, the
 * `docker import` equivalent), tagged by their sha256 so each is loaded once. Concurrent requests
 * for one image share one load.
 */
export class ImageLoader {
  private readonly loading = new Map<string, Promise<string>>();

  constructor(private readonly docker: Dockerode) {}

  /** Returns the image reference in dockerd, importing the verified tarball first if needed. */
  async ensure(image: Image, images: ImageService): Promise<string> {
    const { ref } = imageReference(image.sha256);
    let pending = this.loading.get(image.sha256);
    if (!pending) {
      pending = this.load(image, images).finally(() => this.loading.delete(image.sha256));
      this.loading.set(image.sha256, pending);
    }
    await pending;
    return ref;
  }

  private async load(image: Image, images: ImageService): Promise<string> {
    const { repo, tag, ref } = imageReference(image.sha256);
    try {
      await this.docker.getImage(ref).inspect();
      return ref;
    } catch (e) {
      if (dockerStatus(e) !== 404) throw wrapDockerError('image inspect', e);
    }
    if (image.diskFormat !== 'tar') {
      throw wrapDockerError(
        'image import',
        new Error(`image ${image.id} has disk format ${image.diskFormat}, need tar`),
      );
    }
    const local = await images.acquire(image.id);
    try {
      const stream = await this.docker.importImage(local.path, { repo, tag });
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) => {
          const failed = output?.find((o) => o.error);
          if (err || failed) reject(err ?? new Error(failed?.error));
          else resolve();
        }),
      );
    } catch (e) {
      throw wrapDockerError('image import', e);
    }
    return ref;
  }
}
