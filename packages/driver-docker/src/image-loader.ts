import type { Image, ImageService } from '@nova-lfs/core';
import { reasonIfAborted, untilAborted } from '@nova-lfs/core/ports';
import type Dockerode from 'dockerode';
import { dockerStatus, wrapDockerError } from './errors.js';
import { imageReference } from './labels.js';

interface Load {
  readonly promise: Promise<string>;
  readonly controller: AbortController;
  /** Callers still waiting; the load is aborted when the last one's signal aborts. */
  waiters: number;
}

/**
 * Loads images from core's image cache into dockerd offline (Engine API image import, the
 * `docker import` equivalent), tagged by their sha256 so each is loaded once. Concurrent requests
 * for one image share one load, which stops (upload cut) only when every caller waiting for it
 * has aborted.
 */
export class ImageLoader {
  private readonly loading = new Map<string, Load>();

  constructor(private readonly docker: Dockerode) {}

  /**
   * Returns the image reference in dockerd, importing the verified tarball first if needed.
   * @throws DriverError with `reschedule: false` for an image no Docker host can run (not a
   *   `tar` rootfs, or bytes that fail their sha256); the signal's reason when it aborts.
   */
  async ensure(image: Image, images: ImageService, signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    const { ref } = imageReference(image.sha256);
    const load = this.loading.get(image.sha256) ?? this.start(image, images);
    load.waiters++;
    const onAbort = () => {
      load.waiters--;
      if (load.waiters > 0) return;
      if (this.loading.get(image.sha256) === load) this.loading.delete(image.sha256);
      load.controller.abort(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await untilAborted(load.promise, signal);
    } finally {
      if (!signal?.aborted) {
        signal?.removeEventListener('abort', onAbort);
        load.waiters--;
      }
    }
    return ref;
  }

  private start(image: Image, images: ImageService): Load {
    const controller = new AbortController();
    const load: Load = {
      controller,
      waiters: 0,
      promise: this.load(image, images, controller.signal).finally(() => {
        if (this.loading.get(image.sha256) === load) this.loading.delete(image.sha256);
      }),
    };
    load.promise.catch(() => undefined); // a load every caller left is nobody's error
    this.loading.set(image.sha256, load);
    return load;
  }

  private async load(image: Image, images: ImageService, signal: AbortSignal): Promise<string> {
    const { repo, tag, ref } = imageReference(image.sha256);
    try {
      await untilAborted(this.docker.getImage(ref).inspect(), signal); // dockerode cannot cut this one
      return ref;
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      if (dockerStatus(e) !== 404) throw wrapDockerError('image inspect', e);
    }
    // a rootfs tarball: disk format `tar`, or Glance's convention for Docker images (container
    // format `docker` with disk format `raw`, which the openstack CLI is limited to)
    if (image.diskFormat !== 'tar' && !(image.containerFormat === 'docker' && image.diskFormat === 'raw')) {
      throw wrapDockerError(
        'image import',
        new Error(
          `image ${image.id} has disk format ${image.diskFormat}, need tar (or raw in container format docker)`,
        ),
        undefined,
        { retryable: false, reschedule: false },
      );
    }
    try {
      const local = await untilAborted(images.acquire(image.id), signal);
      const stream = (await this.docker.importImage(local.path, {
        repo,
        tag,
        abortSignal: signal,
      })) as NodeJS.ReadableStream;
      const onAbort = () => (stream as unknown as { destroy(e?: unknown): void }).destroy(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await new Promise<void>((resolve, reject) =>
          this.docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) => {
            const failed = output?.find((o) => o.error);
            if (err || failed) reject(err ?? new Error(failed?.error));
            else resolve();
          }),
        );
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    } catch (e) {
      const thrown = reasonIfAborted(signal, e);
      if (thrown !== e) throw thrown;
      throw wrapDockerError('image import', e);
    }
    return ref;
  }
}
