import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ApiFault } from '../http/api-fault.js';

/** The bytes of an upload, received into a temporary file. */
export interface ReceivedUpload {
  /** The temporary file; the caller removes it when done. */
  readonly path: string;
  readonly size: number;
  /** Hex md5. */
  readonly md5: string;
  /** Hex sha256. */
  readonly sha256: string;
}

/** The 413 of an upload larger than the limit; the connection is closed (the rest is not read). */
export function tooLarge(maxBytes: number): ApiFault {
  return new ApiFault(413, `Image exceeds the storage quota: the limit is ${maxBytes} bytes.`, {
    headers: { Connection: 'close' },
  });
}

/**
 * Streams a request body into a new file in `dir`, hashing (md5, sha256) and counting as it goes,
 * with back-pressure. Stops at `maxBytes` (HTTP body limits do not apply to streamed bodies): the
 * rest of the body is not read. Whatever goes wrong (too large, client gone, disk full), the file
 * is removed before this rejects.
 * @throws ApiFault 413 beyond `maxBytes`; 400 when the client stops sending before the end
 */
export async function receiveUpload(
  source: Readable | undefined,
  options: { readonly dir: string; readonly maxBytes: number },
): Promise<ReceivedUpload> {
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const path = join(options.dir, `${randomUUID()}.part`);
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  const out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
  let size = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        if (source) {
          source.off('data', onData);
          source.off('end', onEnd);
          source.off('error', finish);
          source.off('close', onClose);
          source.pause();
        }
        if (error !== undefined) {
          out.destroy();
          reject(error);
        } else out.end(() => resolve());
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxBytes) return finish(tooLarge(options.maxBytes));
        md5.update(chunk);
        sha256.update(chunk);
        if (!out.write(chunk)) {
          source?.pause();
          out.once('drain', () => {
            if (!settled) source?.resume();
          });
        }
      };
      const onEnd = () => finish();
      const onClose = () => finish(new ApiFault(400, 'The upload ended before all the image data arrived.'));
      out.on('error', finish);
      if (!source) return finish();
      source.on('data', onData);
      source.on('end', onEnd);
      source.on('error', finish);
      source.on('close', onClose);
      source.resume();
    });
  } catch (e) {
    if (!out.closed) await new Promise<void>((r) => out.once('close', () => r()));
    await rm(path, { force: true });
    throw e;
  }
  return { path, size, md5: md5.digest('hex'), sha256: sha256.digest('hex') };
}
