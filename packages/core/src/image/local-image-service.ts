import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImageChecksumError, NotFoundError, ValidationError } from '../errors.js';
import { type Image, imageSchema } from '../model/image.js';
import { imageImportSchema, imageRegistrationSchema, imageSourceSchema } from '../model/image-requests.js';
import { parseInput } from '../model/validation.js';
import type {
  ImageImport,
  ImageRecord,
  ImageService,
  ImageSource,
  LocalArtifact,
} from '../ports/image-service.js';
import type { ImageStore } from '../ports/stores.js';
import { MemoryImageStore } from '../store/memory-image-store.js';

/** Options of {@link LocalImageService}. */
export interface LocalImageServiceOptions {
  /** The catalog (default: a new {@link MemoryImageStore}). */
  readonly store?: ImageStore;
  /** Remove `dir` and everything in it on {@link LocalImageService.close} (default false). */
  readonly ownsDir?: boolean;
  /** Clock for `createdAt` (epoch ms). */
  readonly now?: () => number;
}

const importRequest = imageImportSchema.extend({ source: imageSourceSchema });
const registrationRequest = imageRegistrationSchema.extend({ source: imageSourceSchema });

/**
 * {@link ImageService} on a local directory: blobs are stored as `<dir>/blobs/<sha256>`
 * (content-addressed, shared by images with equal bytes), the catalog in an {@link ImageStore}
 * (durable when the store is). Imports hash while copying and verify the declared sha256;
 * registered images are fetched on first `acquire`, once however many callers ask at the same
 * time, and verified before they become visible. One directory belongs to one catalog: two
 * services sharing a directory with different catalogs would remove each other's bytes.
 */
export class LocalImageService implements ImageService {
  /** Sources that a catalog cannot keep (streams, bytes), per image id, for this process's life. */
  private readonly sources = new Map<string, ImageSource>();
  private readonly fetches = new Map<string, Promise<void>>();
  private readonly blobDir: string;
  private readonly tmpDir: string;
  private readonly store: ImageStore;
  private readonly now: () => number;
  private readonly ownsDir: boolean;
  /** Number of fetches from a source actually performed (observability and tests). */
  fetchCount = 0;

  /** @param dir directory owned by the service (created when first written). */
  constructor(
    readonly dir: string,
    options: LocalImageServiceOptions = {},
  ) {
    this.blobDir = join(dir, 'blobs');
    this.tmpDir = join(dir, 'tmp');
    this.store = options.store ?? new MemoryImageStore();
    this.now = options.now ?? Date.now;
    this.ownsDir = options.ownsDir ?? false;
  }

  /**
   * A service caching in a new directory of its own under the system's temporary directory
   * (created when first written, removed by {@link LocalImageService.close}).
   */
  static temporary(options: Omit<LocalImageServiceOptions, 'ownsDir'> = {}): LocalImageService {
    return new LocalImageService(join(tmpdir(), `nova-lfs-images-${randomUUID()}`), {
      ...options,
      ownsDir: true,
    });
  }

  async get(id: string): Promise<Image | undefined> {
    return (await this.store.get(id))?.image;
  }

  async list(): Promise<Image[]> {
    return (await this.store.list()).map((r) => r.image);
  }

  async import(meta: ImageImport, source: ImageSource): Promise<Image> {
    const req = parseInput(importRequest, { ...meta, source });
    const { sha256, sizeBytes } = await this.copyIn(req.id ?? req.name, source, req.sha256);
    const image = this.toImage(req, sha256, sizeBytes);
    await this.replace({ image }, undefined);
    return image;
  }

  async register(
    meta: ImageImport & { sha256: string; sizeBytes?: number },
    source: ImageSource,
  ): Promise<Image> {
    const req = parseInput(registrationRequest, { ...meta, source });
    const location =
      req.source.kind === 'file' ? { kind: 'file' as const, path: req.source.path } : undefined;
    if (location) await checkFile(location.path);
    const image = this.toImage(req, req.sha256, req.sizeBytes ?? 0);
    await this.replace(location ? { image, location } : { image }, location ? undefined : source);
    return image;
  }

  async acquire(id: string): Promise<LocalArtifact> {
    const record = await this.store.get(id);
    if (!record) throw new NotFoundError('image', id, 'imageId');
    const { sha256 } = record.image;
    const path = this.blobPath(sha256);
    if (await exists(path)) return { image: record.image, path };
    const source = this.sources.get(id) ?? record.location;
    if (!source) throw new NotFoundError('image bytes', sha256, 'imageId');
    let pending = this.fetches.get(sha256);
    if (!pending) {
      pending = this.copyIn(id, source, sha256).then(({ sizeBytes }) => this.noteSize(id, sha256, sizeBytes));
      this.fetches.set(sha256, pending);
      const done = () => this.fetches.delete(sha256);
      pending.then(done, done);
    }
    await pending;
    return { image: (await this.store.get(id))?.image ?? record.image, path };
  }

  async remove(id: string): Promise<void> {
    const record = await this.store.get(id);
    this.sources.delete(id);
    if (!record) return;
    await this.store.remove(id);
    await this.dropBlobIfUnused(record.image.sha256);
  }

  /** Removes the cache directory if the service owns it (see {@link LocalImageServiceOptions.ownsDir}). */
  async close(): Promise<void> {
    this.sources.clear();
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
  }

  /** Path of the blob holding bytes with this sha256. */
  blobPath(sha256: string): string {
    return join(this.blobDir, sha256);
  }

  /** Writes the record (replacing one with its id) and drops bytes the replaced image alone used. */
  private async replace(record: ImageRecord, source: ImageSource | undefined): Promise<void> {
    const id = record.image.id;
    const previous = await this.store.get(id);
    try {
      await this.store.put(record);
    } catch (e) {
      await this.dropBlobIfUnused(record.image.sha256);
      throw e;
    }
    if (source) this.sources.set(id, source);
    else this.sources.delete(id);
    if (previous && previous.image.sha256 !== record.image.sha256) {
      await this.dropBlobIfUnused(previous.image.sha256);
    }
  }

  /** Records the size learnt by a fetch, unless the image was removed or replaced meanwhile. */
  private async noteSize(id: string, sha256: string, sizeBytes: number): Promise<void> {
    const current = await this.store.get(id);
    if (!current || current.image.sha256 !== sha256 || current.image.sizeBytes) return;
    await this.store.put({ ...current, image: { ...current.image, sizeBytes } });
  }

  private async dropBlobIfUnused(sha256: string): Promise<void> {
    if (!(await this.store.hasSha256(sha256))) await rm(this.blobPath(sha256), { force: true });
  }

  private toImage(
    req: Pick<ImageImport, 'id' | 'name' | 'diskFormat' | 'containerFormat' | 'properties'>,
    sha256: string,
    sizeBytes: number,
  ): Image {
    return parseInput(imageSchema, {
      id: req.id ?? randomUUID(),
      name: req.name,
      diskFormat: req.diskFormat,
      containerFormat: req.containerFormat ?? 'bare',
      sha256,
      sizeBytes,
      properties: req.properties ?? {},
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
    const input = await openSource(source);
    const tmp = join(this.tmpDir, randomUUID());
    const hash = createHash('sha256');
    let sizeBytes = 0;
    try {
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
      input.destroy();
      await rm(tmp, { force: true });
    }
  }
}

/** Opens a source; a file that cannot be read is a typed error naming `source.path`. */
async function openSource(source: ImageSource): Promise<Readable> {
  switch (source.kind) {
    case 'file': {
      const handle = await open(source.path, 'r').catch((e: unknown) => {
        throw fileError(source.path, e);
      });
      try {
        if ((await handle.stat()).isDirectory()) throw notAFile(source.path);
      } catch (e) {
        await handle.close();
        throw e;
      }
      return handle.createReadStream();
    }
    case 'bytes':
      return Readable.from([Buffer.from(source.bytes)]);
    case 'stream':
      return await source.open();
  }
}

/** Checks that a file source exists and is not a directory (at registration). */
async function checkFile(path: string): Promise<void> {
  const st = await stat(path).catch((e: unknown) => {
    throw fileError(path, e);
  });
  if (st.isDirectory()) throw notAFile(path);
}

/** The typed error for a file source that cannot be opened (other errors are returned as they are). */
function fileError(path: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new NotFoundError('image source', path, 'source.path');
  if (code === 'EISDIR') return notAFile(path);
  if (code === 'EACCES' || code === 'EPERM') {
    return new ValidationError(
      [{ path: 'source.path', rule: 'readable', message: `${path} cannot be read (${code})` }],
      { cause: e },
    );
  }
  return e;
}

function notAFile(path: string): ValidationError {
  return new ValidationError([{ path: 'source.path', rule: 'file', message: `${path} is a directory` }]);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
