import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Image, ImageProperties, ImageService } from '@nova-lfs/core';
import { untilAborted } from '@nova-lfs/core/ports';
import { type Domain, DomainState } from '@nova-lfs/libvirt';
import { convertToStandaloneQcow2 } from './qemu-img.js';

/**
 * The properties of a snapshot image: the ones of the image the instance booted from (its kernel
 * and initramfs images, command line, architecture: what booting the disk again needs, as Nova
 * copies the instance's image properties into a snapshot), with `sourceInstance` and Glance's
 * `imageType: snapshot`.
 */
export function snapshotImageProperties(instanceId: string, original: Image | undefined): ImageProperties {
  return { ...original?.properties, imageType: 'snapshot', sourceInstance: instanceId };
}

/** What {@link captureDiskImage} needs. */
export interface DiskCapture {
  /** The running, paused or shut-off domain whose disk it is. */
  readonly domain: Domain;
  /** The instance's root disk (a qcow2 overlay on a cached base). */
  readonly disk: string;
  /** Directory for the temporary copy (the instance's own). */
  readonly workDir: string;
  readonly images: ImageService;
  /** The image's metadata. */
  readonly name: string;
  readonly properties: ImageProperties;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Captures a guest's root disk into the image service as a standalone qcow2 image (the overlay
 * merged with its base), hashed by the service on import.
 *
 * A cold snapshot's consistency point: a running guest is paused for the copy (QEMU drains and
 * flushes its disk writes when it stops, so the file holds what the guest wrote) and resumed
 * once the copy is made, before the import; a paused or shut-off guest stays as it is. What the
 * guest still holds in its own page cache is not on the disk: a guest syncs what it needs kept.
 *
 * When `signal` aborts, `qemu-img` is killed, the guest resumed, the temporary copy removed and
 * an import that still completes is removed from the service.
 */
export async function captureDiskImage(c: DiskCapture): Promise<Image> {
  const { domain, signal } = c;
  const copy = join(c.workDir, `snapshot-${randomUUID()}.qcow2`);
  try {
    const active = await domain.isActive();
    const paused = active && (await domain.info()).state !== DomainState.Paused;
    if (paused) await domain.suspend();
    try {
      signal?.throwIfAborted();
      await convertToStandaloneQcow2(c.disk, copy, { forceShare: active, signal });
    } finally {
      if (paused) await domain.resume();
    }
    signal?.throwIfAborted();
    const importing = c.images.import(
      { name: c.name, diskFormat: 'qcow2', containerFormat: 'bare', properties: c.properties },
      { kind: 'file', path: copy },
    );
    // an import that outlives an abort is not left behind
    importing.then(
      (image) => (signal?.aborted ? c.images.remove(image.id) : undefined),
      () => undefined,
    );
    return await untilAborted(
      importing.finally(() => rm(copy, { force: true })),
      signal,
    );
  } catch (e) {
    await rm(copy, { force: true });
    if (signal?.aborted) throw signal.reason;
    throw e;
  }
}
