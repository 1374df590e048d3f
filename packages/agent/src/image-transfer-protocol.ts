import { busIdSchema, defineRpcMethod } from '@nova-lfs/bus-nats';
import { sha256Schema } from '@nova-lfs/core';
import { z } from 'zod';

/**
 * The driver protocol revision from which image bytes travel over the bus (see the package
 * README, "Images"): the agent fetches a call's image from the control plane that sent the call
 * (`imageRpc.read`, served by that control-plane process on `nova.cp.<id>.from.<hostId>.image.read`)
 * and the control plane reads a staged snapshot from the agent (`snapshotRpc.read`, on the
 * agent's own `driver.snapshotRead`). A control plane reads snapshots by path from agents of an
 * older revision (they share its machine).
 */
export const IMAGE_TRANSFER_PROTOCOL_REVISION = 4 as const;

/**
 * The most bytes one chunk carries (256 KiB): base64 in a JSON envelope makes it about 350 KB,
 * well below NATS's default `max_payload` of 1 MB. A server with a smaller `max_payload` gets
 * smaller chunks (see `chunkBytesFor`).
 */
export const MAX_CHUNK_BYTES = 256 * 1024;

const imageIdSchema = z.string().min(1).max(255);

/** One chunk of an image's bytes: `data` (base64) from the requested offset; `eof` after its last byte. */
export const imageChunkSchema = z.object({
  data: z.base64().max(Math.ceil(MAX_CHUNK_BYTES / 3) * 4),
  eof: z.boolean(),
});
/** One chunk on the wire. */
export type ImageChunk = z.output<typeof imageChunkSchema>;

/** Which bytes of an image a reader asks for. */
const chunkRange = {
  offset: z.int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  length: z.int().positive().max(MAX_CHUNK_BYTES),
};

/** Agent → control plane: the bytes of an image the control plane sent the agent a call for. */
export const imageRpc = {
  /**
   * Reads `length` bytes from `offset` of the verified artifact with `sha256` (image `imageId`).
   * Served only for images a call in flight to the caller's host names; anything else is
   * `NLFS_NOT_FOUND`. Read-only, no operation id.
   */
  read: defineRpcMethod(
    'image.read',
    z.object({ imageId: imageIdSchema, sha256: sha256Schema, ...chunkRange }),
    imageChunkSchema,
  ),
} as const;

/** Control plane → agent: the bytes of a snapshot the agent staged (revision 4). */
export const snapshotRpc = {
  /** Reads `length` bytes from `offset` of the staged snapshot `imageId`. Read-only. */
  read: defineRpcMethod(
    'driver.snapshotRead',
    z.object({ imageId: imageIdSchema, ...chunkRange }),
    imageChunkSchema,
  ),
} as const;

/** Who serves a call's image bytes over the bus: the control-plane process that sent the call. */
export const imageServedBySchema = busIdSchema;
