import type { NatsConnection } from '@nats-io/transport-node';
import { Observable } from 'rxjs';
import type { BusEvent } from './bus-event.js';
import { decodeEnvelope, type EnvelopeVersion, issuesOf } from './envelope.js';
import { BusMessageInvalidError, BusPermissionError, BusSenderMismatchError } from './errors.js';
import { type BusLogger, consoleBusLogger } from './logger.js';
import { classifyNatsFailure } from './nats-failure.js';
import { busIdSchema, eventsSubject, hostOfSubject } from './subjects.js';
import { toWireError } from './wire-error.js';

/** One validated event as the control plane receives it. */
export interface ReceivedBusEvent<P> {
  /** The host it came from: its subject's host, which its `sender` matched. */
  readonly hostId: string;
  readonly type: string;
  readonly payload: P;
  /** The message id (for de-duplication). */
  readonly id: string;
  /** When the agent sent it, epoch ms by the agent's clock. */
  readonly sentAt: number;
  /** The schema version the agent wrote. */
  readonly version: EnvelopeVersion;
}

/** Options of {@link BusEventSubscriber}. */
export interface BusEventSubscriberOptions {
  /** Where refused events are reported (default: JSON lines on stderr). */
  readonly logger?: BusLogger;
}

/**
 * The control-plane side of events. Every message is validated before it is emitted: envelope
 * and version, `sender` equal to the host of its subject (a forged sender is refused), payload
 * schema. A refused message is logged and dropped; events of other types are ignored.
 */
export class BusEventSubscriber {
  private readonly logger: BusLogger;

  constructor(
    private readonly nc: NatsConnection,
    options: BusEventSubscriberOptions = {},
  ) {
    this.logger = options.logger ?? consoleBusLogger;
  }

  /**
   * Events of `event`'s type from one host (`hostId`) or all (default). Subscribes on subscribe,
   * unsubscribes on unsubscribe; errors with `BusPermissionError` if NATS refuses the subscription.
   */
  events$<P>(event: BusEvent<P>, options: { hostId?: string } = {}): Observable<ReceivedBusEvent<P>> {
    const host = options.hostId === undefined ? '*' : busIdSchema.parse(options.hostId);
    return new Observable<ReceivedBusEvent<P>>((subscriber) => {
      const sub = this.nc.subscribe(eventsSubject(host), {
        callback: (err, msg) => {
          if (err) {
            const failure = classifyNatsFailure(err);
            subscriber.error(
              failure.kind === 'permission'
                ? new BusPermissionError(failure.subject, failure.operation, { cause: err })
                : err,
            );
            return;
          }
          try {
            const received = this.read(event, msg.subject, msg.data);
            if (received) subscriber.next(received);
          } catch (e) {
            const wire = toWireError(e);
            this.logger.warn('event refused', {
              subject: msg.subject,
              code: wire.code,
              details: wire.details,
            });
          }
        },
      });
      return () => sub.unsubscribe();
    });
  }

  private read<P>(event: BusEvent<P>, subject: string, data: Uint8Array): ReceivedBusEvent<P> | undefined {
    const envelope = decodeEnvelope(subject, data, 'event');
    if (envelope.kind !== 'event') return undefined;
    const hostId = hostOfSubject(subject) ?? '';
    if (envelope.sender !== hostId) throw new BusSenderMismatchError(subject, hostId, envelope.sender);
    if (envelope.type !== event.type) return undefined;
    const payload = event.payload.safeParse(envelope.payload);
    if (!payload.success) throw new BusMessageInvalidError(subject, issuesOf(payload.error, 'payload'));
    return {
      hostId,
      type: envelope.type,
      payload: payload.data,
      id: envelope.id,
      sentAt: envelope.sentAt,
      version: envelope.v,
    };
  }
}
