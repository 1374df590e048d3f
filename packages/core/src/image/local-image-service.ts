import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImageChecksumError, NotFoundError } from '../errors.js';
import { type Image, imageSchema } from '../model/image.js';
import type { ImageImport, ImageService, ImageSource, LocalArtifact } from '../ports/image-service.js';

interface Entry {
  image: Image;
  /** Where to fetch from while not cached. */
  source: ImageSource | undefined;
}

/**
 * {@link ImageService} on a local directory: blobs are stored as `<dir>/blobs/<sha256>`
 * (content-addressed, shared by images with equal bytes). Imports hash while copying and verify
 * the declared sha256; registered images are fetched on first `acquire`, once however many
 * callers ask at the same time, and verified before they become visible.
 */
export class LocalImageService implements ImageService {
  private readonly entries = new Map<string, Entry>();
  private readonly fetches = new Map<string, Promise<string>>();
  private readonly blobDir: string;
  private readonly tmpDir: string;
  /** Number of fetches from a source actually performed (observability and tests). */
  fetchCount = 0;

  /** @param dir directory owned by the service (created if missing). */
  constructor(
    readonly dir: string,
    private readonly now: () => number = Date.now,
  ) {
    this.blobDir = join(dir, 'blobs');
    this.tmpDir = join(dir, 'tmp');
  }

  async get(id: string): Promise<Image | undefined> {
    return this.entries.get(id)?.image;
  }

  async list(): Promise<Image[]> {
    return [...this.entries.values()].map((e) => e.image);
  }

  async import(meta: ImageImport, source: ImageSource): Promise<Image> {
    const { sha256, sizeBytes } = await this.copyIn(meta.id ?? meta.name, source, meta.sha256);
    const image = this.toImage(meta, sha256, sizeBytes);
    this.entries.set(image.id, { image, source: undefined });
    return image;
  }

  async register(
    meta: ImageImport & { sha256: string; sizeBytes?: number },
    source: ImageSource,
  ): Promise<Image> {
    const image = this.toImage(meta, meta.sha256, meta.sizeBytes ?? 0);
    this.entries.set(image.id, { image, source });
    return image;
  }

  async acquire(id: string): Promise<LocalArtifact> {
    const entry = this.entries.get(id);
    if (!entry) throw new NotFoundError('image', id, 'imageId');
    const path = this.blobPath(entry.image.sha256);
    if (await exists(path)) return { image: entry.image, path };
    const source = entry.source;
    if (!source) throw new NotFoundError('image bytes', entry.image.sha256);
    let pending = this.fetches.get(entry.image.sha256);
    if (!pending) {
      pending = this.copyIn(id, source, entry.image.sha256).then(({ sizeBytes }) => {
        if (!entry.image.sizeBytes) entry.image = { ...entry.image, sizeBytes };
        return path;
      });
      this.fetches.set(entry.image.sha256, pending);
      pending.then(
        () => this.fetches.delete(entry.image.sha256),
        () => this.fetches.delete(entry.image.sha256),
      );
    }
    await pending;
    return { image: entry.image, path };
  }

  async remove(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    const shared = [...this.entries.values()].some((e) => e.image.sha256 === entry.image.sha256);
    if (!shared) await rm(this.blobPath(entry.image.sha256), { force: true });
  }

  /** Path of the blob holding bytes with this sha256. */
  blobPath(sha256: string): string {
    return join(this.blobDir, sha256);
  }

  private toImage(meta: ImageImport, sha256: string, sizeBytes: number): Image {
    return imageSchema.parse({
      id: meta.id ?? randomUUID(),
      name: meta.name,
      diskFormat: meta.diskFormat,
      containerFormat: meta.containerFormat ?? 'bare',
      sha256,
      sizeBytes,
      properties: meta.properties ?? {},
      createdAt: this.now(),
    });
  }

  /** Streams the source into a temp file while hashing, verifies, then renames into place. */
  private async copyIn(
    imageId: string,
    source: ImageSource,
    expected: string | undefined,
  ): Promise<{ sha256: string; sizeBytes: number }> {
    this.fetchCount++;
    await mkdir(this.blobDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    const tmp = join(this.tmpDir, randomUUID());
    const hash = createHash('sha256');
    let sizeBytes = 0;
    try {
      const input = await openSource(source);
      await pipeline(
        input,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            sizeBytes += chunk.length;
            yield chunk;
          }
        },
        createWriteStream(tmp),
      );
      const sha256 = hash.digest('hex');
      if (expected && sha256 !== expected) throw new ImageChecksumError(imageId, expected, sha256);
      await rename(tmp, this.blobPath(sha256));
      return { sha256, sizeBytes };
    } finally {
      await rm(tmp, { force: true });
    }
  }
}

async function openSource(source: ImageSource): Promise<Readable> {
  switch (source.kind) {
    case 'file':
      return createReadStream(source.path);
    case 'bytes':
      return Readable.from([Buffer.from(source.bytes)]);
    case 'stream':
      return await source.open();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
