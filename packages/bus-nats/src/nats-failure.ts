import {
  ClosedConnectionError,
  NoRespondersError,
  PermissionViolationError,
  TimeoutError,
} from '@nats-io/transport-node';

/** What a NATS client failure means for the bus. */
export type NatsFailure =
  | { readonly kind: 'timeout' }
  | { readonly kind: 'no-responders' }
  | { readonly kind: 'permission'; readonly subject: string; readonly operation: 'publish' | 'subscription' }
  | { readonly kind: 'closed' }
  | { readonly kind: 'other' };

/** Classifies a NATS client error by walking its `cause` chain. */
export function classifyNatsFailure(e: unknown): NatsFailure {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 5; c = c.cause, depth++) {
    if (c instanceof TimeoutError) return { kind: 'timeout' };
    if (c instanceof NoRespondersError) return { kind: 'no-responders' };
    if (c instanceof PermissionViolationError) {
      return { kind: 'permission', subject: c.subject, operation: c.operation };
    }
    if (c instanceof ClosedConnectionError) return { kind: 'closed' };
  }
  return { kind: 'other' };
}
