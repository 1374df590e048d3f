/**
 * Helpers for driver authors: waiting that a call's signal can cut short.
 * @packageDocumentation
 */

/**
 * Settles as `work` does, or rejects with the signal's reason as soon as the signal aborts (`work`
 * goes on; whoever started it cleans up after it). Without a signal, `work` itself.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const done = () => signal.removeEventListener('abort', onAbort);
    work.then(
      (v) => {
        done();
        resolve(v);
      },
      (e: unknown) => {
        done();
        reject(e);
      },
    );
  });
}

/** Waits `ms`; rejects early with the signal's reason when it aborts (the timer is cleared). */
export function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return untilAborted(waited, signal).finally(() => clearTimeout(timer));
}

/** The signal's reason when it has aborted, else `e` (an aborted HTTP request fails with an `AbortError`). */
export function reasonIfAborted(signal: AbortSignal | undefined, e: unknown): unknown {
  return signal?.aborted ? signal.reason : e;
}

/**
 * The creating calls (spawn, rebuild) of a driver still running, by instance: a call aborted by
 * the engine may still be talking to the hypervisor, and a `destroy` that follows waits for it,
 * so that what it creates goes too.
 */
export class InflightWork {
  private readonly running = new Map<string, Promise<void>>();

  /** Runs `work` for the instance, known as in flight until it settles. */
  track(instanceId: string, work: () => Promise<void>): Promise<void> {
    const running = work().finally(() => {
      if (this.running.get(instanceId) === running) this.running.delete(instanceId);
    });
    this.running.set(instanceId, running);
    return running;
  }

  /** Waits until the instance's work in flight, if any, has settled (or the signal aborts). */
  async settled(instanceId: string, signal: AbortSignal | undefined): Promise<void> {
    const pending = this.running.get(instanceId);
    if (pending)
      await untilAborted(
        pending.catch(() => undefined),
        signal,
      );
  }
}
