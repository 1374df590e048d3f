import type { ImageRecord } from '../ports/image-service.js';
import type { ImageStore } from '../ports/stores.js';

/** {@link ImageStore} in process memory: the catalog is gone when the process exits. */
export class MemoryImageStore implements ImageStore {
  private readonly records = new Map<string, ImageRecord>();
  /** Kept in memory: an image service on it caches bytes in a directory of its own. */
  readonly cacheDir = undefined;

  async get(id: string): Promise<ImageRecord | undefined> {
    return this.records.get(id);
  }

  async list(): Promise<ImageRecord[]> {
    return [...this.records.values()].sort((a, b) => (a.image.id < b.image.id ? -1 : 1));
  }

  async put(record: ImageRecord): Promise<void> {
    this.records.set(record.image.id, record);
  }

  async remove(id: string): Promise<void> {
    this.records.delete(id);
  }

  async hasSha256(sha256: string): Promise<boolean> {
    for (const r of this.records.values()) if (r.image.sha256 === sha256) return true;
    return false;
  }
}
