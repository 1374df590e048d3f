import type { InstanceEvent } from '@nova-lfs/core';
import type { Observable, Subscription } from 'rxjs';
import type { SqlDatabase } from './database.js';

/** A stored engine event with its order. */
export interface StoredEvent {
  readonly seq: number;
  readonly event: InstanceEvent;
}

/**
 * Durable instance events: `record(engine.events$)` persists every event (in arrival order) and
 * `list(instanceId)` reads an instance's events back in order.
 */
export class SqlEventStore {
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly database: SqlDatabase) {}

  /** Persists every event of the stream until unsubscribed. Writes are serialised in order. */
  record(events$: Observable<InstanceEvent>): Subscription {
    return events$.subscribe((event) => {
      this.chain = this.chain.then(() => this.append(event)).catch(() => undefined);
    });
  }

  /** Resolves once every event received so far is written. */
  async flush(): Promise<void> {
    await this.chain;
  }

  async append(event: InstanceEvent): Promise<void> {
    await this.database.exec.run(
      this.database.db
        .insertInto('instance_events')
        .values({
          instance_id: event.instanceId,
          type: event.type,
          at: event.at,
          data: JSON.stringify(event),
        })
        .compile(),
    );
  }

  async list(instanceId: string): Promise<StoredEvent[]> {
    const { rows } = await this.database.exec.run<{ seq: number | string; data: string }>(
      this.database.db
        .selectFrom('instance_events')
        .select(['seq', 'data'])
        .where('instance_id', '=', instanceId)
        .orderBy('seq')
        .compile(),
    );
    return rows.map((r) => ({ seq: Number(r.seq), event: JSON.parse(r.data) as InstanceEvent }));
  }
}
