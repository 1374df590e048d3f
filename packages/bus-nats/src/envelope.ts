import type { FieldIssue } from '@nova-lfs/core';
import { type ZodError, z } from 'zod';
import {
  type EnvelopeV1,
  envelopeV1Schema,
  epochMsSchema,
  heartbeatV1Schema,
  messageIdSchema,
  requestV1Schema,
  V1,
} from './envelope-v1.js';
import { BusMessageInvalidError, BusVersionUnsupportedError } from './errors.js';
import { busIdSchema, busNameSchema } from './subjects.js';

/** The message schema version this package writes. */
export const CURRENT_VERSION = 2 as const;

/**
 * The compatibility rule: a message of the current version N or of N-1 is accepted (an N-1 message
 * is upgraded on read); any other version is refused with `BusVersionUnsupportedError`. Replies
 * are written in the request's version, so an agent one release behind keeps working with a newer
 * control plane and the reverse.
 */
export const ACCEPTED_VERSIONS: readonly number[] = Object.freeze([CURRENT_VERSION, V1]);

/** A version this package can read and write. */
export type EnvelopeVersion = typeof CURRENT_VERSION | typeof V1;

const base = {
  v: z.literal(CURRENT_VERSION),
  id: messageIdSchema,
  sender: busIdSchema,
  sentAt: epochMsSchema,
};

/** An RPC operation id: 1-128 printable ASCII characters without spaces. */
export const operationIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

const requestSchema = requestV1Schema.extend({ ...base, operationId: operationIdSchema.optional() });

const wireErrorSchema = z.object({
  code: z.string().min(1).max(128),
  message: z.string().max(4096),
  details: z.record(z.string(), z.unknown()),
});

const replySchema = z.object({
  ...base,
  kind: z.literal('reply'),
  inReplyTo: messageIdSchema,
  outcome: z.discriminatedUnion('ok', [
    z.object({ ok: z.literal(true), result: z.unknown() }),
    z.object({ ok: z.literal(false), error: wireErrorSchema }),
  ]),
});

const eventSchema = z.object({
  ...base,
  kind: z.literal('event'),
  type: busNameSchema,
  payload: z.unknown(),
});

const heartbeatSchema = heartbeatV1Schema.extend(base);

/** Every current-version message. */
const envelopeSchema = z.discriminatedUnion('kind', [
  requestSchema,
  replySchema,
  eventSchema,
  heartbeatSchema,
]);

type Current = z.infer<typeof envelopeSchema>;
type WithVersion<T> = T extends unknown ? Omit<T, 'v'> & { readonly v: EnvelopeVersion } : never;

/**
 * A message as this package handles it: the current version's shape, with `v` saying which
 * version it was read from (so a reply can be written in the requester's version).
 */
export type Envelope = WithVersion<Current>;
/** An RPC request. `deadline` is epoch ms; `operationId` makes the call idempotent on the agent. */
export type RequestEnvelope = Extract<Envelope, { kind: 'request' }>;
/** An RPC reply: a result or a wire error. */
export type ReplyEnvelope = Extract<Envelope, { kind: 'reply' }>;
/** A host event. */
export type EventEnvelope = Extract<Envelope, { kind: 'event' }>;
/** A heartbeat, stored under its host's key in the hosts bucket. */
export type HeartbeatEnvelope = Extract<Envelope, { kind: 'heartbeat' }>;
/** Which kind of message. */
export type EnvelopeKind = Envelope['kind'];

/** Field issues of a zod error, with dotted paths. */
export function issuesOf(error: ZodError, prefix = ''): FieldIssue[] {
  return error.issues.map((i) => ({
    path: [prefix, ...i.path.map(String)].filter(Boolean).join('.'),
    rule: i.code,
    message: i.message,
  }));
}

function upgradeV1(m: EnvelopeV1): Envelope {
  if (m.kind === 'reply' && !m.outcome.ok) {
    return { ...m, outcome: { ok: false, error: { ...m.outcome.error, details: {} } } };
  }
  return m as Envelope;
}

/**
 * Parses and validates one message. Throws `BusMessageInvalidError` (not JSON, schema broken,
 * or not of `expected` kind) or `BusVersionUnsupportedError` (outside `ACCEPTED_VERSIONS`).
 */
export function decodeEnvelope(subject: string, data: Uint8Array, expected?: EnvelopeKind): Envelope {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (cause) {
    throw new BusMessageInvalidError(
      subject,
      [{ path: '', rule: 'json', message: 'not a UTF-8 JSON document' }],
      { cause },
    );
  }
  const v = (json as { v?: unknown } | null)?.v;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new BusMessageInvalidError(subject, [{ path: '', rule: 'invalid_type', message: 'not an object' }]);
  }
  if (v !== CURRENT_VERSION && v !== V1) throw new BusVersionUnsupportedError(subject, v, ACCEPTED_VERSIONS);
  const parsed = v === CURRENT_VERSION ? envelopeSchema.safeParse(json) : envelopeV1Schema.safeParse(json);
  if (!parsed.success) throw new BusMessageInvalidError(subject, issuesOf(parsed.error));
  const envelope = v === CURRENT_VERSION ? (parsed.data as Envelope) : upgradeV1(parsed.data as EnvelopeV1);
  if (expected && envelope.kind !== expected) {
    throw new BusMessageInvalidError(subject, [
      { path: 'kind', rule: 'invalid_value', message: `expected a ${expected}, got a ${envelope.kind}` },
    ]);
  }
  return envelope;
}

function downgradeToV1(e: Envelope): EnvelopeV1 {
  if (e.kind === 'request') {
    const { operationId: _dropped, ...rest } = e;
    return { ...rest, v: V1 };
  }
  if (e.kind === 'reply' && !e.outcome.ok) {
    const { code, message } = e.outcome.error;
    return { ...e, v: V1, outcome: { ok: false, error: { code, message } } };
  }
  return { ...e, v: V1 } as EnvelopeV1;
}

/**
 * Serialises a message in `version` (default: the current one). Writing v1 drops what v1 cannot
 * carry: a request's `operationId`, an error's `details`.
 */
export function encodeEnvelope(envelope: Envelope, version: EnvelopeVersion = CURRENT_VERSION): Uint8Array {
  const wire = version === V1 ? downgradeToV1(envelope) : { ...envelope, v: CURRENT_VERSION };
  return new TextEncoder().encode(JSON.stringify(wire));
}
