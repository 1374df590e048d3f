import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { ErrorCode, type Image, isNovaError } from '@nova-lfs/core';
import type { Kysely } from 'kysely';
import type { ApiServices } from '../http/api-services.js';
import { imageDb } from './image-migrations.js';
import { fromEngineProperties } from './image-properties.js';
import type { ImageRecordRow, ImageStatus, ImageTables, ImageVisibility } from './image-tables.js';

/**
 * An image as Glance shows it: the image module's record (Glance-only attributes) joined with the
 * engine's image (bytes: sha256, size, formats) once it has data. An image imported into the
 * engine directly has no record until one is needed; it is then public, without an owner, unless
 * it is a snapshot (property `sourceInstance`), which is private to the instance's project.
 */
export interface GlanceImage {
  readonly id: string;
  readonly name: string | null;
  readonly status: ImageStatus;
  readonly visibility: ImageVisibility;
  readonly protected: boolean;
  readonly osHidden: boolean;
  /** The owning project, or null (an image of the operator's). */
  readonly owner: string | null;
  readonly minDisk: number;
  readonly minRam: number;
  readonly diskFormat: string | null;
  readonly containerFormat: string | null;
  /** Hex md5 of the bytes, once known. */
  readonly checksum: string | null;
  /** Hex sha256 of the bytes (the engine's identity of them), once uploaded. */
  readonly sha256: string | null;
  /** Bytes, once uploaded. */
  readonly size: number | null;
  readonly tags: readonly string[];
  /** Extra properties, in Glance's names. */
  readonly properties: Readonly<Record<string, string>>;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Whether the image module keeps a record of it (else it exists in the engine only). */
  readonly recorded: boolean;
}

/**
 * The images Glance shows, kept in the `image_record` table and the engine's image service. The
 * md5 checksum of an image whose bytes did not come through the upload route (an engine import,
 * a snapshot) is computed from the engine's cached file the first time someone shows or
 * downloads it, and then stored; until then it is null (lists never compute it).
 */
export class ImageCatalog {
  private readonly db: Kysely<ImageTables>;

  constructor(
    private readonly services: Pick<ApiServices, 'engine' | 'db'>,
    private readonly now: () => number = Date.now,
  ) {
    this.db = imageDb(services.db);
  }

  /** Every image (no visibility filtering), recording snapshots' owners on first sight. */
  async all(): Promise<GlanceImage[]> {
    const [rows, engineImages] = await Promise.all([
      this.db.selectFrom('image_record').selectAll().execute(),
      this.services.engine.images.list(),
    ]);
    const byId = new Map(engineImages.map((i) => [i.id, i]));
    const out: GlanceImage[] = [];
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.id);
      const image = this.join(row, byId.get(row.id));
      if (image) out.push(image);
    }
    for (const image of engineImages) if (!seen.has(image.id)) out.push(await this.adopt(image));
    return out;
  }

  /** One image, or undefined. */
  async get(id: string): Promise<GlanceImage | undefined> {
    const [row, engineImage] = await Promise.all([
      this.db.selectFrom('image_record').selectAll().where('id', '=', id).executeTakeFirst(),
      this.services.engine.images.get(id),
    ]);
    if (row) return this.join(row, engineImage);
    return engineImage ? await this.adopt(engineImage) : undefined;
  }

  /** The Glance view of an engine image already at hand: one query (its record), no second engine read. */
  async ofEngineImage(image: Image): Promise<GlanceImage> {
    const row = await this.db
      .selectFrom('image_record')
      .selectAll()
      .where('id', '=', image.id)
      .executeTakeFirst();
    return (row ? this.join(row, image) : undefined) ?? (await this.adopt(image));
  }

  /** Whether an id is taken (by a record or an engine image). */
  async exists(id: string): Promise<boolean> {
    const row = await this.db.selectFrom('image_record').select('id').where('id', '=', id).executeTakeFirst();
    return row !== undefined || (await this.services.engine.images.get(id)) !== undefined;
  }

  /** Writes an image's Glance attributes (creating its record if it has none). */
  async save(image: GlanceImage): Promise<GlanceImage> {
    const row = toRow(image);
    await this.db
      .insertInto('image_record')
      .values(row)
      .onConflict((oc) => oc.column('id').doUpdateSet({ ...row, id: undefined }))
      .execute();
    return { ...image, recorded: true };
  }

  /**
   * Moves an image from one status to another if it is still in `from` (compare-and-set).
   * @returns whether it moved
   */
  async transition(
    id: string,
    from: ImageStatus,
    to: ImageStatus,
    extra: { checksum?: string } = {},
  ): Promise<boolean> {
    const result = await this.db
      .updateTable('image_record')
      .set({ status: to, updated_at: this.now(), ...extra })
      .where('id', '=', id)
      .where('status', '=', from)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Forgets an image's record (not its engine image). Idempotent. */
  async forget(id: string): Promise<void> {
    await this.db.deleteFrom('image_record').where('id', '=', id).execute();
  }

  /**
   * The image with its md5 checksum, computing (and storing) it from the engine's file when it
   * is active and not known yet; unchanged when the bytes cannot be read.
   */
  async withChecksum(image: GlanceImage): Promise<GlanceImage> {
    if (image.status !== 'active' || image.checksum !== null) return image;
    let checksum: string;
    try {
      const { path } = await this.services.engine.images.acquire(image.id);
      checksum = await md5OfFile(path);
    } catch {
      return image;
    }
    return await this.save({ ...image, checksum });
  }

  /** The image's record joined with its engine image; undefined for an active record whose bytes were removed. */
  private join(row: ImageRecordRow, engineImage: Image | undefined): GlanceImage | undefined {
    if (row.status === 'active' && !engineImage) return undefined;
    return {
      id: row.id,
      name: row.name,
      status: row.status,
      visibility: row.visibility,
      protected: row.protected === 1,
      osHidden: row.os_hidden === 1,
      owner: row.owner,
      minDisk: Number(row.min_disk),
      minRam: Number(row.min_ram),
      diskFormat: row.disk_format ?? engineImage?.diskFormat ?? null,
      containerFormat: row.container_format ?? engineImage?.containerFormat ?? null,
      checksum: row.checksum,
      sha256: engineImage?.sha256 ?? null,
      size: engineImage ? engineImage.sizeBytes : null,
      tags: parseJson<string[]>(row.tags, []),
      properties: parseJson<Record<string, string>>(row.properties, {}),
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
      recorded: true,
    };
  }

  /** An engine-only image; a snapshot gets a record owned by its instance's project. */
  private async adopt(image: Image): Promise<GlanceImage> {
    const source = image.properties.sourceInstance;
    const base: GlanceImage = {
      id: image.id,
      name: image.name,
      status: 'active',
      visibility: source === undefined ? 'public' : 'private',
      protected: false,
      osHidden: false,
      owner: null,
      minDisk: 0,
      minRam: 0,
      diskFormat: image.diskFormat,
      containerFormat: image.containerFormat,
      checksum: null,
      sha256: image.sha256,
      size: image.sizeBytes,
      tags: [],
      properties: fromEngineProperties(image.properties),
      createdAt: image.createdAt ?? 0,
      updatedAt: image.createdAt ?? 0,
      recorded: false,
    };
    if (source === undefined) return base;
    const owner = await this.services.engine.get(source).then(
      (i) => i.projectId,
      (e: unknown) => {
        if (isNovaError(e) && e.code === ErrorCode.NotFound) return null;
        throw e;
      },
    );
    const adopted = { ...base, owner, recorded: true };
    await this.db
      .insertInto('image_record')
      .values(toRow(adopted))
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    return (await this.get(image.id)) ?? adopted;
  }
}

function toRow(image: GlanceImage): ImageRecordRow {
  return {
    id: image.id,
    name: image.name,
    status: image.status,
    owner: image.owner,
    visibility: image.visibility,
    protected: image.protected ? 1 : 0,
    os_hidden: image.osHidden ? 1 : 0,
    min_disk: image.minDisk,
    min_ram: image.minRam,
    disk_format: image.diskFormat,
    container_format: image.containerFormat,
    checksum: image.checksum,
    tags: JSON.stringify(image.tags),
    properties: JSON.stringify(image.properties),
    created_at: image.createdAt,
    updated_at: image.updatedAt,
  };
}

function parseJson<T>(text: string, fallback: T): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/** Hex md5 of a file's bytes. */
export async function md5OfFile(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
