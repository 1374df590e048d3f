import { access, constants } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import type { BusRpcClient } from '@nova-lfs/bus-nats';
import {
  type Image,
  ImageChecksumError,
  type LocalArtifact,
  LocalImageService,
  NotFoundError,
} from '@nova-lfs/core';
import { untilAborted } from '@nova-lfs/core/ports';
import type { ImageArtifact } from './driver-protocol.js';
import { chunkedStream } from './image-chunks.js';
import { imageRpc } from './image-transfer-protocol.js';

/** Options of {@link AgentImageCache}. */
export interface AgentImageCacheOptions {
  /** The agent's own cache directory (content-addressed blobs, see core's `LocalImageService`). */
  readonly dir: string;
  /** The agent's RPC client (its `senderId` is the agent's host id) for reads from control planes. */
  readonly client: BusRpcClient;
  /**
   * A directory this agent shares with the control planes (their image cache, mounted here):
   * an artifact whose path lies under it is read in place, not fetched. Default: none (every
   * artifact is fetched over the bus into `dir`).
   */
  readonly sharedDir?: string;
  /** Deadline of each chunk read, in ms (default 30,000). */
  readonly chunkDeadlineMs?: number;
}

/**
 * The agent's image cache: a call's image (and its kernel and initrd) comes from the
 * control-plane process that sent the call (`artifact.servedBy`), read chunk by chunk over the
 * bus into a temporary file, verified against the sha256 the control plane recorded, and only
 * then renamed into the cache (core's `LocalImageService`: a partial or corrupt fetch never
 * becomes an entry). Concurrent calls for one image fetch it once; a cached image is not fetched
 * again (also after a restart: blobs are named by their sha256).
 */
export class AgentImageCache {
  private readonly cache: LocalImageService;
  private readonly client: BusRpcClient;
  private readonly sharedDir: string | undefined;
  private readonly chunkDeadlineMs: number;

  constructor(options: AgentImageCacheOptions) {
    this.cache = new LocalImageService(options.dir);
    this.client = options.client;
    this.sharedDir = options.sharedDir === undefined ? undefined : resolve(options.sharedDir);
    this.chunkDeadlineMs = options.chunkDeadlineMs ?? 30_000;
  }

  /** Fetches performed from a control plane (not counting cache hits and shared-directory reads). */
  get fetchCount(): number {
    return this.cache.fetchCount;
  }

  /** The cache's directory. */
  get dir(): string {
    return this.cache.dir;
  }

  /**
   * A verified local copy of `image`, whose bytes the control plane described as `artifact`.
   * `signal` ends the wait, not a fetch other calls may share.
   * @throws ImageChecksumError when the fetched bytes do not hash to `artifact.sha256` (nothing is
   *   cached); NotFoundError (field `imageId`) when no control plane serves the bytes to this
   *   host; the bus's errors (`RpcConnectionLostError`, `RpcDeadlineExceededError`, a
   *   `RemoteCallError`) when a read fails; ValidationError (field `imageId`) for a stream that
   *   grows past its recorded size or stops making progress
   */
  async acquire(image: Image, artifact: ImageArtifact, signal?: AbortSignal): Promise<LocalArtifact> {
    if (artifact.sha256 !== image.sha256)
      throw new ImageChecksumError(image.id, image.sha256, artifact.sha256);
    if (await this.inSharedDir(artifact.path)) return { image, path: artifact.path };
    const servedBy = artifact.servedBy;
    if (!servedBy) throw new NotFoundError('image bytes', image.id, 'imageId');
    const sizeBytes = artifact.sizeBytes ?? image.sizeBytes;
    await this.cache.register(
      {
        id: image.id,
        name: image.name,
        diskFormat: image.diskFormat,
        containerFormat: image.containerFormat,
        properties: image.properties,
        sha256: artifact.sha256,
        sizeBytes,
      },
      {
        kind: 'stream',
        open: () =>
          chunkedStream({
            imageId: image.id,
            sizeBytes,
            read: (offset, length) =>
              this.client.callControlPlane(
                servedBy,
                imageRpc.read,
                { imageId: image.id, sha256: artifact.sha256, offset, length },
                { deadlineMs: this.chunkDeadlineMs },
              ),
          }),
      },
    );
    return await untilAborted(this.cache.acquire(image.id), signal);
  }

  /** Whether `path` lies under the shared directory and can be read here. */
  private async inSharedDir(path: string): Promise<boolean> {
    if (this.sharedDir === undefined) return false;
    const rel = relative(this.sharedDir, resolve(path));
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return false;
    try {
      await access(path, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  }
}
