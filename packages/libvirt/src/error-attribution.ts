import type { ErrorAttribution, RawVirError } from './errors.js';

interface PendingError {
  readonly error: RawVirError;
  /** The calls that were in flight when libvirt reported it: one of them raised it. */
  readonly candidates: Set<number>;
  /** Another call took an error it shared candidates with, without being sure it was its own. */
  tainted: boolean;
}

/**
 * Matches the errors libvirt reports through its error handler to the calls that raised them.
 *
 * libvirt keeps its last error per thread and, when a public call fails, passes that thread's
 * `virError` to the error handler before the call returns (`virDispatchError`). With koffi the
 * handler is a JS callback: a failing call on a libuv worker waits while the handler runs on the
 * main thread, so the handler reads the failing thread's own error, but it cannot tell which of
 * the calls in flight is the one that failed. This tracker records, for each reported error, the
 * calls in flight at that moment; the call that then completes with a failure takes the oldest
 * error it is a candidate for. A call that succeeds is removed from every candidate set, so an
 * error left with one candidate is that call's. Two calls failing while both in flight are the
 * only case it cannot decide: each gets one of the two errors, both marked `ambiguous`.
 */
export class ErrorAttributor {
  private nextId = 1;
  private readonly inFlight = new Set<number>();
  private pending: PendingError[] = [];
  /** The synchronous call running on the main thread, if any: its errors are its own. */
  private syncCall: number | undefined;
  private readonly syncErrors = new Map<number, RawVirError>();

  /** Starts tracking a call; returns its id. */
  begin(sync = false): number {
    const id = this.nextId++;
    this.inFlight.add(id);
    if (sync) this.syncCall = id;
    return id;
  }

  /** The error handler: libvirt reported `error` for one of the calls in flight. */
  report(error: RawVirError): void {
    if (this.syncCall !== undefined) {
      // A handler invoked during a synchronous call runs inside that call on the main thread
      // (relayed handlers of worker threads wait for the event loop), so the error is its own.
      this.syncErrors.set(this.syncCall, error);
      return;
    }
    this.pending.push({ error, candidates: new Set(this.inFlight), tainted: false });
  }

  /**
   * Ends call `id`. When it `failed`, returns the error attributed to it (undefined if libvirt
   * reported none) and how sure the attribution is.
   */
  end(id: number, failed: boolean): { error: RawVirError | undefined; attribution: ErrorAttribution } {
    this.inFlight.delete(id);
    if (this.syncCall === id) {
      this.syncCall = undefined;
      const error = this.syncErrors.get(id);
      this.syncErrors.delete(id);
      return { error: failed ? error : undefined, attribution: 'certain' };
    }
    let taken: PendingError | undefined;
    let attribution: ErrorAttribution = 'certain';
    if (failed) {
      const mine = this.pending.filter((p) => p.candidates.has(id));
      // An error only this call could have raised is surely its own; otherwise the oldest.
      taken = mine.find((p) => p.candidates.size === 1) ?? mine[0];
      if (taken !== undefined) {
        if (mine.length > 1 && taken.candidates.size > 1) {
          attribution = 'ambiguous';
          // What this call left behind may be its own error, so whoever takes it is not sure either.
          for (const p of mine) if (p !== taken) p.tainted = true;
        }
        if (taken.tainted) attribution = 'ambiguous';
      }
    }
    if (this.pending.length > 0) {
      const left: PendingError[] = [];
      for (const p of this.pending) {
        if (p === taken) continue;
        p.candidates.delete(id);
        // Errors whose candidates all finished without taking them (a call that succeeded
        // after an internal error, or the event loop) are dropped.
        if (p.candidates.size > 0) left.push(p);
      }
      this.pending = left;
    }
    return { error: taken?.error, attribution };
  }

  /** Errors reported but not yet taken (for tests). */
  get pendingCount(): number {
    return this.pending.length;
  }
}
