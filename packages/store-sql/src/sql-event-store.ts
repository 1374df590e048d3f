import type { InstanceEvent } from '@nova-lfs/core';
import type { Observable, Subscription } from 'rxjs';
import type { SqlDatabase } from './database.js';
import { eventsOfRow, SqlEventLog } from './sql-event-log.js';

/** A stored engine event with its order. */
export interface StoredEvent {
  readonly seq: number;
  readonly event: InstanceEvent;
}

/** Events written by one statement at most (keeps statements and their parameters bounded). */
const MAX_BATCH = 200;

/**
 * Durable instance events recorded from the engine's stream: `record(engine.events$)` persists
 * every event (in arrival order) into the {@link SqlEventLog} and `list(instanceId)` reads an
 * instance's events back in order. This is the path of an engine that does not write its events
 * through units of work (`SqlEventLog` as the outbox); both give the same sequence numbers.
 * Recorded events are written in batches: one insert for whatever arrived while the previous one
 * was being written, so recording keeps up with the engine however many events it emits per commit.
 */
export class SqlEventStore {
  private readonly pending: InstanceEvent[] = [];
  private writing: Promise<void> | undefined;

  /** @param log the durable event log the events are appended to (their sequence numbers) */
  constructor(
    private readonly database: SqlDatabase,
    private readonly log: SqlEventLog = new SqlEventLog(database),
  ) {}

  /** Persists every event of the stream until unsubscribed, in order. */
  record(events$: Observable<InstanceEvent>): Subscription {
    return events$.subscribe((event) => {
      this.pending.push(event);
      this.writing ??= this.drain();
    });
  }

  /** Resolves once every event received so far is written. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  async append(event: InstanceEvent): Promise<void> {
    await this.insert([event]);
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        // a failed write loses its batch, as a failed single write did; recording goes on
        await this.insert(this.pending.splice(0, MAX_BATCH)).catch(() => undefined);
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async insert(events: readonly InstanceEvent[]): Promise<void> {
    // through the log's statements: the same sequence numbers as events written by units of work
    await this.database.exec.runAll(this.log.append(events, () => undefined).statements);
  }

  async list(instanceId: string): Promise<StoredEvent[]> {
    const { rows } = await this.database.exec.run<{
      seq: number | string;
      event_count: number | string | null;
      data: string;
    }>(
      this.database.db
        .selectFrom('instance_events')
        .select(['seq', 'event_count', 'data'])
        .where('instance_id', '=', instanceId)
        .orderBy('seq')
        .compile(),
    );
    return rows.flatMap(eventsOfRow);
  }
}
