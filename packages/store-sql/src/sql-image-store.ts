import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { Image, ImageRecord, ImageStore } from '@nova-lfs/core';
import type { ImageLocation } from '@nova-lfs/core/ports';
import type { Kysely } from 'kysely';
import type { SqlDatabase } from './database.js';
import { ExclusiveReadCache } from './exclusive-read-cache.js';
import type { Database } from './schema.js';
import { PreparedStatement } from './statement.js';

/** A row of the `images` table (migration `0005_images`). */
interface ImageRow {
  id: string;
  sha256: string;
  /** The image (JSON). */
  data: string;
  /** Where a registered image's bytes are (JSON), or null. */
  location: string | null;
}

type ImageDatabase = Database & { images: ImageRow };

const toRecord = (row: Pick<ImageRow, 'data' | 'location'>): ImageRecord => {
  const image = JSON.parse(row.data) as Image;
  return row.location === null ? { image } : { image, location: JSON.parse(row.location) as ImageLocation };
};

/** The file name `openSqliteStores` gives the database when only a directory is named. */
const DEFAULT_SQLITE_FILE = 'nova-lfs.sqlite';

/**
 * Where the default image service keeps the bytes of this database's catalog: for SQLite, beside
 * the file (`<dir>/images` for `<dir>/nova-lfs.sqlite`, else `<file>.images`); nothing for an
 * in-memory SQLite database (the service takes a temporary directory); for PostgreSQL, in the
 * data directory (`$NOVA_LFS_DATA_DIR`, else `./.nova-lfs`) under `images-pg-<digest>`, the
 * digest naming the database and schema, so that each catalog has one cache.
 */
export function imageCacheDirOf(database: Pick<SqlDatabase, 'dialect' | 'name'>): string | undefined {
  if (database.dialect === 'sqlite') {
    if (database.name === ':memory:' || database.name === '') return undefined;
    return basename(database.name) === DEFAULT_SQLITE_FILE
      ? join(dirname(database.name), 'images')
      : `${database.name}.images`;
  }
  const dataDir = process.env.NOVA_LFS_DATA_DIR ?? join(process.cwd(), '.nova-lfs');
  const digest = createHash('sha256').update(database.name).digest('hex').slice(0, 16);
  return join(dataDir, `images-pg-${digest}`);
}

/**
 * {@link ImageStore} on SQL (table `images`): the image catalog survives restarts, and every
 * process on a shared database sees one catalog. When the database is exclusive to this process,
 * images read once are kept in memory (every change goes through this store), so the lookup of
 * each create costs no query.
 */
export class SqlImageStore implements ImageStore {
  readonly cacheDir: string | undefined;
  private readonly db: Kysely<ImageDatabase>;
  private readonly getStmt;
  private readonly shaStmt;
  private readonly cache;

  /** @param options.cacheDir where cached bytes go by default (see {@link imageCacheDirOf}). */
  constructor(
    private readonly database: SqlDatabase,
    options: { readonly cacheDir?: string } = {},
  ) {
    this.cacheDir = options.cacheDir ?? imageCacheDirOf(database);
    this.db = database.db.withTables<{ images: ImageRow }>();
    const db = this.db;
    this.getStmt = PreparedStatement.of<{ id: string }>((p) =>
      db.selectFrom('images').select(['data', 'location']).where('id', '=', p('id')),
    );
    this.shaStmt = PreparedStatement.of<{ sha256: string }>((p) =>
      db.selectFrom('images').select('id').where('sha256', '=', p('sha256')).limit(1),
    );
    this.cache = new ExclusiveReadCache<ImageRecord>(database);
  }

  async get(id: string): Promise<ImageRecord | undefined> {
    return this.cache.get(id, async () => {
      const [row] = (
        await this.database.exec.run<Pick<ImageRow, 'data' | 'location'>>(this.getStmt.bind({ id }))
      ).rows;
      return row ? toRecord(row) : undefined;
    });
  }

  async list(): Promise<ImageRecord[]> {
    const q = this.db.selectFrom('images').select(['data', 'location']).orderBy('id');
    return (await this.database.exec.run<Pick<ImageRow, 'data' | 'location'>>(q.compile())).rows.map(
      toRecord,
    );
  }

  async put(record: ImageRecord): Promise<void> {
    const { image } = record;
    const data = JSON.stringify(image);
    const location = record.location ? JSON.stringify(record.location) : null;
    this.cache.forget(image.id);
    await this.database.exec.run(
      this.db
        .insertInto('images')
        .values({ id: image.id, sha256: image.sha256, data, location })
        .onConflict((oc) => oc.column('id').doUpdateSet({ sha256: image.sha256, data, location }))
        .compile(),
    );
    this.cache.forget(image.id); // a read queued before the write may have cached the old row
  }

  async remove(id: string): Promise<void> {
    this.cache.forget(id);
    await this.database.exec.run(this.db.deleteFrom('images').where('id', '=', id).compile());
    this.cache.forget(id);
  }

  async hasSha256(sha256: string): Promise<boolean> {
    return (await this.database.exec.run(this.shaStmt.bind({ sha256 }))).rows.length > 0;
  }
}
