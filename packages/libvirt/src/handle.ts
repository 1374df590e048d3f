import { LibvirtClosedError } from './errors.js';
import type { Pointer } from './native.js';

/**
 * A libvirt object pointer that calls borrow while it is live: {@link NativeHandle.release}
 * waits for the calls in flight and then frees it once, so no call ever runs on a freed pointer.
 */
export class NativeHandle {
  private ptr: Pointer | undefined;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private releasing: Promise<void> | undefined;

  constructor(
    ptr: Pointer,
    private readonly kind: 'connection' | 'domain' | 'snapshot',
    private readonly label: string | undefined,
  ) {
    this.ptr = ptr;
  }

  /** Whether the pointer was released (or is being released). */
  get released(): boolean {
    return this.ptr === undefined || this.releasing !== undefined;
  }

  /** Runs `fn` with the live pointer. @throws LibvirtClosedError once released. */
  async use<T>(fn: (ptr: Pointer) => Promise<T> | T): Promise<T> {
    const ptr = this.ptr;
    if (ptr === undefined || this.releasing !== undefined)
      throw new LibvirtClosedError(this.kind, this.label);
    this.inFlight++;
    try {
      return await fn(ptr);
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    }
  }

  /** The live pointer for a synchronous read. @throws LibvirtClosedError once released. */
  peek(): Pointer {
    if (this.ptr === undefined || this.releasing !== undefined)
      throw new LibvirtClosedError(this.kind, this.label);
    return this.ptr;
  }

  /** Waits for calls in flight, then runs `free` once on the pointer. Idempotent. */
  release(free: (ptr: Pointer) => Promise<unknown>): Promise<void> {
    this.releasing ??= (async () => {
      if (this.inFlight > 0) await new Promise<void>((r) => (this.drained = r));
      const ptr = this.ptr;
      this.ptr = undefined;
      if (ptr !== undefined) await free(ptr);
    })();
    return this.releasing;
  }
}
