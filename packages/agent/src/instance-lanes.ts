import { BuildAbortedError } from '@nova-lfs/core';
import { KeyedMutex } from '@nova-lfs/core/ports';

/**
 * Runs the agent's driver calls one at a time per instance, as the engine does per task: a
 * spawn and the destroy that follows its abort never overlap on the hypervisor. A destroy
 * preempts: it aborts the call running on its instance and every call queued before it (reason:
 * `BuildAbortedError`), then runs. A call can also be cancelled by its operation id (the control
 * plane's signal aborted).
 */
export class InstanceLanes {
  private readonly mutex = new KeyedMutex();
  /** Calls queued or running, per instance. */
  private readonly calls = new Map<string, Set<AbortController>>();
  private readonly byOperation = new Map<string, AbortController>();

  /** Instances with calls queued or running. */
  get busyInstances(): number {
    return this.calls.size;
  }

  /**
   * Runs `work` once earlier calls on `instanceId` settled. `work` gets a signal that aborts with
   * `signal` (the RPC deadline), with a cancel of `operationId`, or with a preempting destroy.
   */
  async run<T>(
    instanceId: string,
    options: { signal: AbortSignal; operationId: string | undefined; preempt?: boolean },
    work: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    let set = this.calls.get(instanceId);
    if (options.preempt && set) {
      for (const c of set) c.abort(new BuildAbortedError(instanceId));
    }
    if (!set) {
      set = new Set();
      this.calls.set(instanceId, set);
    }
    const controller = new AbortController();
    set.add(controller);
    if (options.operationId) this.byOperation.set(options.operationId, controller);
    const signal = AbortSignal.any([options.signal, controller.signal]);
    try {
      return await this.mutex.run(instanceId, async () => {
        signal.throwIfAborted();
        return await work(signal);
      });
    } finally {
      set.delete(controller);
      if (set.size === 0 && this.calls.get(instanceId) === set) this.calls.delete(instanceId);
      if (options.operationId && this.byOperation.get(options.operationId) === controller) {
        this.byOperation.delete(options.operationId);
      }
    }
  }

  /** Aborts the call with `operationId` (running or queued) with `reason`. False when none. */
  cancel(operationId: string, reason: unknown): boolean {
    const c = this.byOperation.get(operationId);
    if (!c) return false;
    c.abort(reason);
    return true;
  }
}
