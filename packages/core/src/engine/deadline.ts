import { DeadlineExceededError } from '../errors.js';

/**
 * Runs `call` with a signal aborted after `timeoutMs` (reason: a {@link DeadlineExceededError})
 * or when `parent` aborts (its reason). Resolves or rejects with the call, or rejects with the
 * abort reason as soon as the signal aborts, even if the call ignores its signal.
 */
export async function withDeadline<T>(
  what: { operation: string; instanceId?: string; hostId?: string },
  timeoutMs: number,
  parent: AbortSignal | undefined,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (parent?.aborted) throw parent.reason;
  const controller = new AbortController();
  const onParent = () => controller.abort(parent?.reason);
  parent?.addEventListener('abort', onParent, { once: true });
  const timer = setTimeout(
    () => controller.abort(new DeadlineExceededError({ ...what, timeoutMs })),
    timeoutMs,
  );
  timer.unref?.();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(controller.signal.reason);
    controller.signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    return await Promise.race([call(controller.signal), aborted]);
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onParent);
    if (onAbort) controller.signal.removeEventListener('abort', onAbort);
  }
}
