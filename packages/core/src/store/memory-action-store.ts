import type { InstanceAction } from '../model/action.js';
import type { ActionStore } from '../ports/stores.js';

/**
 * In-memory {@link ActionStore}. Keeps the history of the last `deletedRetention` deleted
 * instances (default 1,000) so that a long-running process does not grow without bound.
 */
export class MemoryActionStore implements ActionStore {
  private readonly byInstance = new Map<string, InstanceAction[]>();
  private readonly pending = new Map<string, InstanceAction>();
  private readonly deleted: string[] = [];
  private deletedHead = 0;

  constructor(private readonly deletedRetention = 1000) {}

  async start(action: InstanceAction): Promise<void> {
    this.startNow(action);
  }

  /** {@link MemoryActionStore.start}, synchronously (for a memory unit of work). */
  startNow(action: InstanceAction): void {
    const list = this.byInstance.get(action.instanceId);
    if (list) list.push(action);
    else this.byInstance.set(action.instanceId, [action]);
    if (action.result === 'pending') this.pending.set(action.id, action);
  }

  async finish(
    actionId: string,
    result: Pick<InstanceAction, 'result' | 'finishedAt' | 'fault'>,
  ): Promise<void> {
    this.finishNow(actionId, result);
  }

  /** {@link MemoryActionStore.finish}, synchronously (for a memory unit of work). */
  finishNow(actionId: string, result: Pick<InstanceAction, 'result' | 'finishedAt' | 'fault'>): void {
    const action = this.pending.get(actionId);
    if (!action) return;
    this.pending.delete(actionId);
    const done: InstanceAction = { ...action, ...result };
    const list = this.byInstance.get(action.instanceId);
    if (!list) return;
    const at = list.lastIndexOf(action);
    if (at >= 0) list[at] = done;
  }

  async list(instanceId: string): Promise<InstanceAction[]> {
    return [...(this.byInstance.get(instanceId) ?? [])];
  }

  async listPending(): Promise<InstanceAction[]> {
    return [...this.pending.values()];
  }

  async instanceDeleted(instanceId: string): Promise<void> {
    if (this.deletedRetention <= 0) {
      this.byInstance.delete(instanceId);
      return;
    }
    this.deleted.push(instanceId);
    while (this.deleted.length - this.deletedHead > this.deletedRetention) {
      const oldest = this.deleted[this.deletedHead++];
      if (oldest !== undefined) this.byInstance.delete(oldest);
    }
    if (this.deletedHead > 4096) {
      this.deleted.splice(0, this.deletedHead);
      this.deletedHead = 0;
    }
  }
}
