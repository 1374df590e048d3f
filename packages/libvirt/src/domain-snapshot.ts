import { NativeHandle } from './handle.js';
import type { Pointer } from './native.js';
import type { HandleOwner, OwnedHandle } from './owner.js';

/**
 * A snapshot of a domain (`virDomainSnapshotPtr`). Free it with {@link DomainSnapshot.free} (or
 * close the connection); calls after that throw `LibvirtClosedError`.
 */
export class DomainSnapshot implements OwnedHandle {
  /** The snapshot's name (read once when the handle is made). */
  readonly name: string;
  private readonly handle: NativeHandle;

  /** @internal Made by `Domain` methods; takes ownership of `ptr`. */
  constructor(
    private readonly owner: HandleOwner,
    ptr: Pointer,
    /** Name of the domain the snapshot belongs to. */
    readonly domainName: string,
  ) {
    this.name = owner.native.callSync<string>('virDomainSnapshotGetName', ptr);
    this.handle = new NativeHandle(ptr, 'snapshot', this.name);
    owner.track(this);
  }

  /** The snapshot's XML description (`virDomainSnapshotGetXMLDesc`). */
  xml(flags = 0): Promise<string> {
    return this.handle.use((p) => this.owner.native.call<string>('virDomainSnapshotGetXMLDesc', p, flags));
  }

  /** Reverts the domain to this snapshot (`virDomainRevertToSnapshot`, {@link SnapshotRevertFlags}). */
  async revert(flags = 0): Promise<void> {
    await this.handle.use((p) => this.owner.native.call('virDomainRevertToSnapshot', p, flags));
  }

  /**
   * Deletes the snapshot (`virDomainSnapshotDelete`, {@link SnapshotDeleteFlags}) and frees the
   * handle.
   */
  async delete(flags = 0): Promise<void> {
    await this.handle.use((p) => this.owner.native.call('virDomainSnapshotDelete', p, flags));
    await this.free();
  }

  /** Frees the handle (`virDomainSnapshotFree`); the snapshot itself stays. Idempotent. */
  async free(): Promise<void> {
    await this.handle.release((p) => this.owner.native.call('virDomainSnapshotFree', p));
    this.owner.untrack(this);
  }
}
