import type { SqlDatabase } from './database.js';

/**
 * Records read by id, kept in memory only while the database is exclusive to this process (then
 * every change goes through the store that owns the cache, which forgets what it changes). On a
 * shared database every read goes to the database.
 */
export class ExclusiveReadCache<T> {
  private readonly records = new Map<string, T>();
  private readonly enabled: boolean;

  constructor(database: SqlDatabase) {
    this.enabled = database.exclusive;
  }

  /** The record, from memory or from `load` (whose answer is kept when it found one). */
  async get(id: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    const known = this.records.get(id);
    if (known !== undefined) return known;
    const loaded = await load();
    if (this.enabled && loaded !== undefined) this.records.set(id, loaded);
    return loaded;
  }

  /** Drops the record (call before changing it in the database). */
  forget(id: string): void {
    this.records.delete(id);
  }
}
