import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ValidationError } from '@nova-lfs/core';
import { type ImageChunk, MAX_CHUNK_BYTES } from './image-transfer-protocol.js';

/** Room left in a message for the envelope around a chunk's base64. */
const ENVELOPE_ROOM = 4096;

/**
 * The raw bytes one chunk may carry on a connection whose server allows `maxPayload` bytes per
 * message (base64 grows them by 4/3): at most {@link MAX_CHUNK_BYTES}.
 */
export function chunkBytesFor(maxPayload: number | undefined): number {
  if (!maxPayload) return MAX_CHUNK_BYTES;
  return Math.max(1024, Math.min(MAX_CHUNK_BYTES, Math.floor(((maxPayload - ENVELOPE_ROOM) * 3) / 4)));
}

/** Reads up to `length` bytes of the file at `path` from `offset` as a wire chunk. */
export async function readFileChunk(path: string, offset: number, length: number): Promise<ImageChunk> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const buffer = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
    let read = 0;
    while (read < buffer.length) {
      const r = await handle.read(buffer, read, buffer.length - read, offset + read);
      if (r.bytesRead === 0) break;
      read += r.bytesRead;
    }
    return { data: buffer.subarray(0, read).toString('base64'), eof: offset + read >= size };
  } finally {
    await handle.close();
  }
}

/** What {@link chunkedStream} reads. */
export interface ChunkedSource {
  /** Reads one chunk; its errors end the stream (the reader's temp file is then discarded). */
  read(offset: number, length: number): Promise<ImageChunk>;
  /** Bytes the artifact was recorded with (0: unknown); more bytes than this are refused. */
  readonly sizeBytes: number;
  /** Names the artifact in errors (`imageId` field). */
  readonly imageId: string;
  /** Raw bytes asked for per chunk (default {@link MAX_CHUNK_BYTES}). */
  readonly chunkBytes?: number;
}

/**
 * A stream of an artifact's bytes read chunk by chunk, in order, one request at a time.
 * It fails with a `ValidationError` (field `imageId`) when a chunk makes no progress without
 * being the last, or the artifact grows past its recorded size; with the read's own error when a
 * read fails (a lost connection, a missing image).
 */
export function chunkedStream(source: ChunkedSource): Readable {
  const chunkBytes = source.chunkBytes ?? MAX_CHUNK_BYTES;
  async function* chunks(): AsyncGenerator<Buffer> {
    let offset = 0;
    for (;;) {
      const chunk = await source.read(offset, chunkBytes);
      const bytes = Buffer.from(chunk.data, 'base64');
      offset += bytes.length;
      if (source.sizeBytes > 0 && offset > source.sizeBytes) {
        throw refused(source.imageId, 'size', `more than the ${source.sizeBytes} bytes recorded`);
      }
      if (bytes.length > 0) yield bytes;
      if (chunk.eof) return;
      if (bytes.length === 0) throw refused(source.imageId, 'progress', `an empty chunk at ${offset}`);
    }
  }
  return Readable.from(chunks());
}

function refused(imageId: string, rule: string, message: string): ValidationError {
  return new ValidationError([{ path: 'imageId', rule, message: `image ${imageId}: ${message}` }]);
}
