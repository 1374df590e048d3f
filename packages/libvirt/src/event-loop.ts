import type { LibvirtNative } from './native.js';

/**
 * Drives libvirt's default event loop (`virEventRunDefaultImpl`) while at least one connection is
 * open: one iteration at a time on libuv's thread pool, so it holds one pool thread while it runs.
 * libvirt dispatches domain events and keepalive from it; koffi relays each event callback to the
 * main thread (the loop's thread waits for it). When the last connection closes, the loop is woken
 * with a zero-delay libvirt timeout and stops, so nothing keeps the process alive.
 */
export class LibvirtEventLoop {
  private users = 0;
  private running: Promise<void> | undefined;
  private stopRequested = false;
  private wakeTimer: number | undefined;
  private readonly wakeCallback: bigint;
  /** Iterations that failed (libvirt returned -1); the loop goes on after a short pause. */
  failures = 0;

  constructor(private readonly native: LibvirtNative) {
    this.wakeCallback = native.koffi.register(() => {}, native.koffi.pointer(native.types.timeoutCallback));
  }

  /** Whether the loop is running now. */
  get active(): boolean {
    return this.running !== undefined;
  }

  /** A connection starts using the loop: starts it if it is not running. */
  acquire(): void {
    this.users++;
    if (this.running === undefined) this.running = this.run();
  }

  /** A connection stopped using the loop: stops it after the last one, resolving once it has. */
  async release(): Promise<void> {
    this.users = Math.max(0, this.users - 1);
    if (this.users > 0 || this.running === undefined) return;
    const running = this.running;
    this.stopRequested = true;
    // libvirt's poll loop sleeps until a handle or timeout fires: a zero-delay timeout wakes it.
    if (this.wakeTimer === undefined)
      this.wakeTimer = this.native.callSync<number>('virEventAddTimeout', 0, this.wakeCallback, null, null);
    await running;
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopRequested) {
        try {
          await this.native.call('virEventRunDefaultImpl');
        } catch {
          this.failures++;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      if (this.wakeTimer !== undefined) {
        this.native.callSync('virEventRemoveTimeout', this.wakeTimer);
        this.wakeTimer = undefined;
      }
      this.stopRequested = false;
      this.running = undefined;
      // A connection opened while the loop was stopping: run again for it.
      if (this.users > 0) this.running = this.run();
    }
  }
}
