import { DeadlineExceededError } from '../errors.js';
import { callAbortState, type DriverCallOptions } from '../ports/driver.js';

/** What a driver call is, for its deadline error. */
export interface CallTarget {
  readonly operation: string;
  readonly instanceId?: string;
  readonly hostId?: string;
}

/**
 * One call in flight, handed to the driver as its {@link DriverCallOptions}: settles with the
 * call, or rejects at its deadline or when its task aborts.
 */
class CallEntry implements DriverCallOptions {
  done = false;
  timer: ReturnType<typeof setTimeout> | undefined;
  private controller: AbortController | undefined;
  private abortedWith: unknown;
  reject: ((reason: unknown) => void) | undefined;

  /** The signal handed to the driver, made only if the driver asks for it (most calls never do). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortedWith !== undefined) this.controller.abort(this.abortedWith);
    }
    return this.controller.signal;
  }

  /** The abort reason, or undefined: the check drivers make without the signal. */
  [callAbortState](): unknown {
    return this.abortedWith;
  }

  abort(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.abortedWith = reason;
    this.controller?.abort(reason);
    this.reject?.(reason);
  }
}

/**
 * A task's cancellation (a build, an action): aborting it aborts the driver call it has in flight
 * and every later one at once. Cheaper than an AbortController per task: the engine runs many.
 */
export class TaskControl {
  aborted = false;
  reason: unknown;
  current: CallEntry | undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.current?.abort(reason);
  }
}

/**
 * Runs `call` with a deadline of `timeoutMs` and the task's cancellation. Past the deadline the
 * call's signal aborts (reason: a {@link DeadlineExceededError}) and the call rejects at once, even
 * if the driver ignores its signal. The signal is made only if the driver reads `options.signal`,
 * and the task is not an AbortSignal, so a call that finishes in time costs one timer.
 * @throws DeadlineExceededError past the deadline; the task's abort reason if it aborts
 */
export function withDeadline<T>(
  target: CallTarget,
  timeoutMs: number,
  task: TaskControl | undefined,
  call: (options: DriverCallOptions) => Promise<T>,
): Promise<T> {
  if (task?.aborted) return Promise.reject(task.reason);
  const entry = new CallEntry();
  if (task) task.current = entry;
  return new Promise<T>((resolve, reject) => {
    entry.reject = reject;
    entry.timer = setTimeout(
      () => entry.abort(new DeadlineExceededError({ ...target, timeoutMs })),
      timeoutMs,
    );
    const settle = () => {
      clearTimeout(entry.timer);
      entry.done = true;
      if (task?.current === entry) task.current = undefined;
    };
    call(entry).then(
      (v) => {
        if (entry.done) return;
        settle();
        resolve(v);
      },
      (e: unknown) => {
        if (entry.done) return;
        settle();
        reject(e);
      },
    );
  });
}
