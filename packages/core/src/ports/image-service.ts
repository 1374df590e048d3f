import type { Readable } from 'node:stream';
import type { Image } from '../model/image.js';

/** Where an image's bytes come from when they are not yet in the local cache. */
export type ImageSource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | { readonly kind: 'stream'; readonly open: () => Promise<Readable> | Readable };

/** Where a registered image's bytes are, in a form a catalog can keep: a local file. */
export interface ImageLocation {
  readonly kind: 'file';
  readonly path: string;
}

/**
 * An image's catalog entry (what an `ImageStore` keeps): its metadata and, for a registered
 * image, where its bytes are when that can be written down (a file; a stream or in-memory bytes
 * is held by the service for the life of the process only).
 */
export interface ImageRecord {
  readonly image: Image;
  readonly location?: ImageLocation;
}

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
  /**
   * Copies bytes into the store now, hashing them; verifies `sha256` when given. An image with
   * the same id is replaced.
   * @throws ValidationError naming each bad field (`name`, `diskFormat`, `source.path`, ...);
   *   NotFoundError (field `source.path`) when the file does not exist; ImageChecksumError.
   *   Nothing is stored then.
   */
  import(meta: ImageImport, source: ImageSource): Promise<Image>;
  /**
   * Records an image whose bytes stay at `source` until first use (like a Glance location);
   * `meta.sha256` is required and is verified at fetch time.
   * @throws ValidationError naming each bad field; NotFoundError (field `source.path`) when a file
   *   source does not exist.
   */
  register(meta: ImageImport & { sha256: string; sizeBytes?: number }, source: ImageSource): Promise<Image>;
  /**
   * Returns a verified local artifact, fetching it once if it is not cached yet.
   * @throws NotFoundError (field `imageId`) for an unknown image, or when its bytes are neither
   *   cached nor reachable; ImageChecksumError when fetched bytes do not match.
   */
  acquire(id: string): Promise<LocalArtifact>;
  /** Forgets an image; cached bytes go when no other image shares their sha256. Idempotent. */
  remove(id: string): Promise<void>;
  /**
   * Releases what the service holds: a cache directory it created for itself is removed. For the
   * owner of the service to call once, when it is done with it.
   */
  close?(): Promise<void>;
}
