import type { DomainLifecycleEvent } from '@nova-lfs/libvirt';
import type { Observable } from 'rxjs';

/** A wait for a lifecycle event; {@link LifecycleWait.cancel} ends it early. */
export interface LifecycleWait {
  /** True when the event came; false when `timeoutMs` passed or the wait was cancelled. Rejects with the signal's reason on abort. */
  readonly done: Promise<boolean>;
  cancel(): void;
}

/**
 * Waits for one of `events` (libvirt `DomainEventType` values) of the domain with `uuid`, at most
 * `timeoutMs` (the timer is the wait's upper bound, not a synchronisation). Subscribe before the
 * call that causes the event, so none is missed.
 */
export function waitForLifecycle(
  events$: Observable<DomainLifecycleEvent>,
  uuid: string,
  events: readonly number[],
  options: { timeoutMs: number; signal?: AbortSignal | undefined },
): LifecycleWait {
  let finish: (v: boolean) => void = () => {};
  let fail: (e: unknown) => void = () => {};
  const done = new Promise<boolean>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const sub = events$.subscribe({
    next: (e) => {
      if (e.domainUuid === uuid && events.includes(e.event)) end(true);
    },
    complete: () => end(false),
  });
  const timer = setTimeout(() => end(false), options.timeoutMs);
  const onAbort = () => {
    cleanup();
    fail(options.signal?.reason);
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  function cleanup(): void {
    clearTimeout(timer);
    sub.unsubscribe();
    options.signal?.removeEventListener('abort', onAbort);
  }
  function end(v: boolean): void {
    cleanup();
    finish(v);
  }
  if (options.signal?.aborted) onAbort();
  return { done, cancel: () => end(false) };
}
