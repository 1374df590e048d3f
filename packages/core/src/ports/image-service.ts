import type { Readable } from 'node:stream';
import type { Image } from '../model/image.js';

/** Where an image's bytes come from when they are not yet in the local cache. */
export type ImageSource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | { readonly kind: 'stream'; readonly open: () => Promise<Readable> | Readable };

/** Metadata given when registering or importing an image (`sha256` and size are computed). */
export interface ImageImport {
  readonly id?: string;
  readonly name: string;
  readonly diskFormat: Image['diskFormat'];
  readonly containerFormat?: Image['containerFormat'];
  /** Expected sha256; an import whose bytes hash differently fails and stores nothing. */
  readonly sha256?: string;
  readonly properties?: Image['properties'];
}

/** A verified local copy of an image. */
export interface LocalArtifact {
  readonly image: Image;
  /** Absolute path of the cached bytes (read-only: copy or overlay, never modify). */
  readonly path: string;
}

/**
 * The image service: a catalog of images and a local content-addressed cache keyed by sha256.
 * Drivers call {@link ImageService.acquire} to get a local artifact; concurrent calls for one image
 * fetch it once.
 */
export interface ImageService {
  get(id: string): Promise<Image | undefined>;
  list(): Promise<Image[]>;
  /** Copies bytes into the store now, hashing them; verifies `sha256` when given. */
  import(meta: ImageImport, source: ImageSource): Promise<Image>;
  /**
   * Records an image whose bytes stay at `source` until first use (like a Glance location);
   * `meta.sha256` is required and is verified at fetch time.
   */
  register(meta: ImageImport & { sha256: string; sizeBytes?: number }, source: ImageSource): Promise<Image>;
  /** Returns a verified local artifact, fetching it once if it is not cached yet. */
  acquire(id: string): Promise<LocalArtifact>;
  /** Forgets an image; cached bytes go when no other image shares their sha256. Idempotent. */
  remove(id: string): Promise<void>;
}
