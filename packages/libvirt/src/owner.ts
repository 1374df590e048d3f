import type { NativeHandle } from './handle.js';
import type { LibvirtNative } from './native.js';

/** A handle a connection frees when it closes (domains, snapshots). */
export interface OwnedHandle {
  /** Frees the libvirt object; idempotent. */
  free(): Promise<void>;
}

/** What a domain or snapshot needs from its connection (internal). */
export interface HandleOwner {
  readonly native: LibvirtNative;
  readonly handle: NativeHandle;
  track(h: OwnedHandle): void;
  untrack(h: OwnedHandle): void;
}
