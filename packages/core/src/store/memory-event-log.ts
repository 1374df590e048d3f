import type { InstanceEvent } from '../engine/events.js';
import type { EventLog, EventLogFilter, LoggedEvent } from '../ports/unit-of-work.js';

/**
 * In-memory {@link EventLog}: the newest `capacity` events (default 10,000) in a ring, with the
 * project of each event's instance kept beside it for filtered reads.
 */
export class MemoryEventLog implements EventLog {
  private readonly ring: Array<LoggedEvent | undefined>;
  private next = 1;
  private readonly projects = new Map<string, string>();

  constructor(private readonly capacity = 10_000) {
    this.ring = new Array(Math.max(0, capacity));
  }

  /** Appends events in order; returns them as logged. Synchronous: used inside a memory unit. */
  appendAll(events: readonly InstanceEvent[]): LoggedEvent[] {
    const out: LoggedEvent[] = [];
    for (const event of events) {
      if (event.type === 'instance.created') this.projects.set(event.instanceId, event.instance.projectId);
      const projectId = this.projects.get(event.instanceId);
      const logged: LoggedEvent =
        projectId === undefined ? { seq: this.next++, event } : { seq: this.next++, event, projectId };
      out.push(logged);
      if (this.capacity > 0) this.ring[logged.seq % this.capacity] = logged;
      if (event.type === 'instance.deleted') this.projects.delete(event.instanceId);
    }
    return out;
  }

  async read(since: number, limit: number, filter: EventLogFilter = {}): Promise<LoggedEvent[]> {
    const out: LoggedEvent[] = [];
    const from = Math.max(since + 1, this.oldestSeq());
    for (let seq = from; seq < this.next && out.length < limit; seq++) {
      const slot = this.ring[seq % this.capacity];
      if (!slot || slot.seq !== seq) continue;
      if (filter.instanceId !== undefined && slot.event.instanceId !== filter.instanceId) continue;
      if (filter.projectId !== undefined && slot.projectId !== filter.projectId) continue;
      out.push(slot);
    }
    return out;
  }

  async head(): Promise<number> {
    return this.next - 1;
  }

  async oldest(): Promise<number> {
    return this.next === 1 ? 0 : this.oldestSeq();
  }

  async prune(retention: { olderThan?: number; keepLast?: number }): Promise<number> {
    let dropped = 0;
    const keepFrom = retention.keepLast !== undefined ? this.next - retention.keepLast : 0;
    for (let seq = this.oldestSeq(); seq < this.next; seq++) {
      const slot = this.ring[seq % this.capacity];
      if (!slot || slot.seq !== seq) continue;
      const old = retention.olderThan !== undefined && slot.event.at < retention.olderThan;
      if (seq >= keepFrom && !old) break;
      this.ring[seq % this.capacity] = undefined;
      dropped++;
    }
    return dropped;
  }

  private oldestSeq(): number {
    if (this.capacity <= 0) return this.next;
    let seq = Math.max(1, this.next - this.capacity);
    while (seq < this.next && this.ring[seq % this.capacity]?.seq !== seq) seq++;
    return seq;
  }
}
