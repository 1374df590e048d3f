import type { NatsConnection } from '@nats-io/transport-node';
import { type BusLogger, BusRpcServer } from '@nova-lfs/bus-nats';
import { type LocalArtifact, NotFoundError } from '@nova-lfs/core';
import { chunkBytesFor, readFileChunk } from './image-chunks.js';
import { imageRpc } from './image-transfer-protocol.js';

/** Options of {@link AgentImageServer}. */
export interface AgentImageServerOptions {
  /**
   * This control-plane process's bus id: agents send their reads to
   * `nova.cp.<controlPlaneId>.from.<hostId>.image.read`. Use the `senderId` of the process's
   * `BusRpcClient`, so the agent finds the process that sent it the call.
   */
  readonly controlPlaneId: string;
  /** Where refused requests are reported (default: JSON lines on stderr). */
  readonly logger?: BusLogger;
}

interface Grant {
  readonly path: string;
  holders: number;
}

/**
 * The control plane's side of image transfer (driver protocol revision 4): serves chunks of the
 * verified artifacts it sent calls for (`imageRpc.read`), to the host each call went to and to no
 * other. A `RemoteDriver` grants an artifact to its host for as long as a call that names it
 * runs (`grant` → release); a read of anything not granted to the calling host is
 * `NLFS_NOT_FOUND`. The calling host is the one NATS let publish on the subject (agents may send
 * only as themselves, see `agentPermissions`), checked against the message's sender.
 */
export class AgentImageServer {
  readonly controlPlaneId: string;
  private readonly rpc: BusRpcServer;
  private readonly grants = new Map<string, Grant>();
  private readonly served = new Map<string, number>();

  constructor(
    private readonly nc: NatsConnection,
    options: AgentImageServerOptions,
  ) {
    this.controlPlaneId = options.controlPlaneId;
    this.rpc = new BusRpcServer(nc, {
      hostId: options.controlPlaneId,
      serves: 'controlPlane',
      ...(options.logger ? { logger: options.logger } : {}),
    });
    this.rpc.handle(imageRpc.read, async (p, ctx) => {
      const grant = this.grants.get(grantKey(ctx.sender, p.imageId, p.sha256));
      if (!grant) throw new NotFoundError('image', p.imageId, 'imageId');
      const length = Math.min(p.length, chunkBytesFor(this.nc.info?.max_payload));
      // the cached file went away under the grant: as missing as an image never granted
      const chunk = await readFileChunk(grant.path, p.offset, length).catch(() => {
        throw new NotFoundError('image bytes', p.imageId, 'imageId');
      });
      this.served.set(p.sha256, (this.served.get(p.sha256) ?? 0) + 1);
      return chunk;
    });
  }

  /** Starts serving (the subscription is on the server when this resolves). */
  async start(): Promise<void> {
    await this.rpc.start();
  }

  /** Stops serving; reads in flight are aborted. Idempotent. */
  async stop(): Promise<void> {
    await this.rpc.stop();
  }

  /**
   * Lets `hostId` read `artifact` until the returned function is called (grants of one artifact
   * to one host are counted: it stays readable until the last is released). Idempotent release.
   */
  grant(hostId: string, artifact: LocalArtifact): () => void {
    const key = grantKey(hostId, artifact.image.id, artifact.image.sha256);
    const grant = this.grants.get(key) ?? { path: artifact.path, holders: 0 };
    grant.holders++;
    this.grants.set(key, grant);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--grant.holders === 0) this.grants.delete(key);
    };
  }

  /** Chunks served of the artifact with `sha256` since this server started (observability, tests). */
  chunksServed(sha256: string): number {
    return this.served.get(sha256) ?? 0;
  }
}

function grantKey(hostId: string, imageId: string, sha256: string): string {
  return `${hostId}\u0000${imageId}\u0000${sha256}`;
}
