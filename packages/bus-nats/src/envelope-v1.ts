import { z } from 'zod';
import { busIdSchema, busNameSchema } from './subjects.js';

/**
 * The previous message version (v1), pinned: what agents and control planes one release behind
 * send and read. Do not change these schemas; a new version gets its own file and this one is
 * dropped when its successor becomes the previous version.
 *
 * v1 differs from v2 in two places: a request has no `operationId` (no idempotency), and an error
 * reply carries only `code` and `message` (no `details`).
 */
export const V1 = 1 as const;

/** Epoch milliseconds. */
export const epochMsSchema = z.number().int().nonnegative();
/** Message ids: 1-64 letters, digits, `_` and `-` (UUIDs fit). */
export const messageIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, _ and -');

const baseV1 = {
  v: z.literal(V1),
  id: messageIdSchema,
  sender: busIdSchema,
  sentAt: epochMsSchema,
};

/** v1 request: no operation id. */
export const requestV1Schema = z.object({
  ...baseV1,
  kind: z.literal('request'),
  method: busNameSchema,
  deadline: epochMsSchema,
  payload: z.unknown(),
});

/** v1 error: code and message only. */
export const wireErrorV1Schema = z.object({
  code: z.string().min(1).max(128),
  message: z.string().max(4096),
});

/** v1 reply. */
export const replyV1Schema = z.object({
  ...baseV1,
  kind: z.literal('reply'),
  inReplyTo: messageIdSchema,
  outcome: z.discriminatedUnion('ok', [
    z.object({ ok: z.literal(true), result: z.unknown() }),
    z.object({ ok: z.literal(false), error: wireErrorV1Schema }),
  ]),
});

/** v1 event. */
export const eventV1Schema = z.object({
  ...baseV1,
  kind: z.literal('event'),
  type: busNameSchema,
  payload: z.unknown(),
});

/** v1 heartbeat. */
export const heartbeatV1Schema = z.object({
  ...baseV1,
  kind: z.literal('heartbeat'),
  seq: z.number().int().nonnegative(),
  intervalMs: z.number().int().positive(),
  startedAt: epochMsSchema,
});

/** Any v1 message. */
export const envelopeV1Schema = z.discriminatedUnion('kind', [
  requestV1Schema,
  replyV1Schema,
  eventV1Schema,
  heartbeatV1Schema,
]);

/** A v1 message as it is on the wire. */
export type EnvelopeV1 = z.infer<typeof envelopeV1Schema>;
