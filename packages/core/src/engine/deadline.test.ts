import { describe, expect, it } from 'vitest';
import { DeadlineExceededError } from '../errors.js';
import { type DriverCallOptions, throwIfCallAborted } from '../ports/driver.js';
import { TaskControl, withDeadline } from './deadline.js';

describe('driver call deadlines', () => {
  it('rejects at the deadline even if the driver ignores its signal, and aborts the signal', async () => {
    let seen: DriverCallOptions | undefined;
    const err = await withDeadline({ operation: 'spawn', hostId: 'h' }, 20, undefined, (call) => {
      seen = call;
      return new Promise(() => {});
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect(err).toMatchObject({ details: { operation: 'spawn', timeoutMs: 20 } });
    expect(seen!.signal!.aborted).toBe(true);
    expect(seen!.signal!.reason).toBe(err);
    expect(() => throwIfCallAborted(seen)).toThrow(DeadlineExceededError);
  });

  it('a task abort rejects its call in flight with the task reason and refuses later calls at once', async () => {
    const task = new TaskControl();
    let signal: AbortSignal | undefined;
    const running = withDeadline({ operation: 'spawn', hostId: 'h' }, 10_000, task, (call) => {
      signal = call.signal;
      return new Promise(() => {});
    });
    const reason = new Error('deleted');
    task.abort(reason);
    await expect(running).rejects.toBe(reason);
    expect(signal!.aborted).toBe(true);
    let called = false;
    await expect(
      withDeadline({ operation: 'destroy', hostId: 'h' }, 10_000, task, async () => {
        called = true;
      }),
    ).rejects.toBe(reason);
    expect(called).toBe(false);
  });

  it('answers the cheap abort check without making the signal, and passes results through', async () => {
    let call: DriverCallOptions | undefined;
    const value = await withDeadline({ operation: 'read', hostId: 'h' }, 1000, undefined, async (c) => {
      call = c;
      throwIfCallAborted(c);
      return 42;
    });
    expect(value).toBe(42);
    // a plain signal (not the engine's) is read as usual
    const plain = new AbortController();
    plain.abort(new Error('plain'));
    expect(() => throwIfCallAborted({ signal: plain.signal })).toThrow('plain');
    expect(() => throwIfCallAborted(call)).not.toThrow();
  });
});
