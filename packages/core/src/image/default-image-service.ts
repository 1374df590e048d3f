import type { ImageStore } from '../ports/stores.js';
import { MemoryImageStore } from '../store/memory-image-store.js';
import { LocalImageService } from './local-image-service.js';

/** Where the default image service of an engine keeps its catalog and cached bytes. */
export interface DefaultImageServiceOptions {
  /** Cache directory; default the catalog's `cacheDir`, else a temporary directory of its own. */
  readonly dir?: string | undefined;
  /** The catalog; default a new in-memory one. */
  readonly store?: ImageStore | undefined;
}

/**
 * The image service `registerCore` gives an engine that was not given one: a
 * {@link LocalImageService} on the engine's catalog (durable when its stores are), caching bytes
 * in `dir`, else beside the database (the catalog's `cacheDir`), else in a new temporary
 * directory that `close()` removes. Engines never share a default cache.
 */
export function defaultImageService(options: DefaultImageServiceOptions = {}): LocalImageService {
  const store = options.store ?? new MemoryImageStore();
  const dir = options.dir ?? store.cacheDir;
  return dir ? new LocalImageService(dir, { store }) : LocalImageService.temporary({ store });
}
