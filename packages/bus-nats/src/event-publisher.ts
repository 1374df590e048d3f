import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { ValidationError } from '@nova-lfs/core';
import type { BusEvent } from './bus-event.js';
import { type EventEnvelope, encodeEnvelope, issuesOf } from './envelope.js';
import { BusClosedError } from './errors.js';
import { busIdSchema, eventsSubject } from './subjects.js';

/** Options of {@link BusEventPublisher}. */
export interface BusEventPublisherOptions {
  /** The host whose events these are: the subject and the `sender` of every message. */
  readonly hostId: string;
  /** Clock, epoch ms (default `Date.now`). */
  readonly now?: () => number;
}

/**
 * The agent side of events: publishes validated, versioned events on
 * `nova.agent.<hostId>.events`. Delivery is at most once (core NATS): a subscriber that is
 * disconnected misses events, so state must also be readable by RPC (reconciliation).
 */
export class BusEventPublisher {
  private readonly hostId: string;
  private readonly now: () => number;

  constructor(
    private readonly nc: NatsConnection,
    options: BusEventPublisherOptions,
  ) {
    this.hostId = busIdSchema.parse(options.hostId);
    this.now = options.now ?? Date.now;
  }

  /**
   * Publishes one event and returns its message id. Throws core `ValidationError` (fields under
   * `payload.`) for a payload breaking the event's schema, `BusClosedError` on a closed connection.
   * A refusal by the server's permissions is reported asynchronously on the connection's status.
   */
  publish<P>(event: BusEvent<P>, payload: P): string {
    if (this.nc.isClosed()) throw new BusClosedError(`publish ${event.type}`);
    const checked = event.payload.safeParse(payload);
    if (!checked.success) throw new ValidationError(issuesOf(checked.error, 'payload'));
    const envelope: EventEnvelope = {
      v: 2,
      kind: 'event',
      id: randomUUID(),
      sender: this.hostId,
      sentAt: this.now(),
      type: event.type,
      payload: checked.data,
    };
    this.nc.publish(eventsSubject(this.hostId), encodeEnvelope(envelope));
    return envelope.id;
  }

  /** Resolves once the server has received everything published so far. */
  async flush(): Promise<void> {
    await this.nc.flush();
  }
}
