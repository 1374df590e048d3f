import { describe, expect, it } from 'vitest';
import {
  ACCEPTED_VERSIONS,
  CURRENT_VERSION,
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
} from './envelope.js';
import { BusErrorCode } from './errors.js';

const enc = (x: unknown) => new TextEncoder().encode(JSON.stringify(x));
const dec = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;
const S = 'nova.agent.h1.rpc.driver.spawn';

function thrown(fn: () => unknown): { code?: string; details?: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    return e as { code?: string; details?: Record<string, unknown> };
  }
  throw new Error('did not throw');
}

/**
 * The previous version's messages exactly as a v1 peer writes them. These literals are the
 * compatibility contract: do not edit them when the current version changes.
 */
const V1_MESSAGES = {
  request: {
    v: 1,
    kind: 'request',
    id: 'a6f1c1d2-0000-4000-8000-000000000001',
    sender: 'control-1',
    sentAt: 1_760_000_000_000,
    method: 'driver.spawn',
    deadline: 1_760_000_030_000,
    payload: { instanceId: 'i-1' },
  },
  replyOk: {
    v: 1,
    kind: 'reply',
    id: 'r1',
    sender: 'h1',
    sentAt: 1_760_000_000_500,
    inReplyTo: 'a6f1c1d2-0000-4000-8000-000000000001',
    outcome: { ok: true, result: { powerState: 'running' } },
  },
  replyError: {
    v: 1,
    kind: 'reply',
    id: 'r2',
    sender: 'h1',
    sentAt: 1_760_000_000_500,
    inReplyTo: 'a6f1c1d2-0000-4000-8000-000000000001',
    outcome: { ok: false, error: { code: 'NLFS_DRIVER_ERROR', message: 'docker spawn failed: boom' } },
  },
  event: {
    v: 1,
    kind: 'event',
    id: 'e1',
    sender: 'h1',
    sentAt: 1_760_000_000_000,
    type: 'instance.power',
    payload: { instanceId: 'i-1', powerState: 'shutdown' },
  },
  heartbeat: {
    v: 1,
    kind: 'heartbeat',
    id: 'b1',
    sender: 'h1',
    sentAt: 1_760_000_000_000,
    seq: 7,
    intervalMs: 10_000,
    startedAt: 1_759_999_000_000,
  },
} as const;

describe('message envelope', () => {
  it('accepts exactly the current version and the previous one', () => {
    expect(CURRENT_VERSION).toBe(2);
    expect([...ACCEPTED_VERSIONS].sort()).toEqual([1, 2]);
  });

  it('round-trips every kind of the current version', () => {
    const request: Envelope = {
      ...V1_MESSAGES.request,
      v: 2,
      operationId: 'op-1',
    };
    expect(decodeEnvelope(S, encodeEnvelope(request))).toEqual(request);
    const reply: Envelope = {
      ...V1_MESSAGES.replyError,
      v: 2,
      outcome: {
        ok: false,
        error: { code: 'NLFS_DRIVER_ERROR', message: 'm', details: { retryable: true } },
      },
    };
    expect(decodeEnvelope(S, encodeEnvelope(reply), 'reply')).toEqual(reply);
    for (const m of [V1_MESSAGES.event, V1_MESSAGES.heartbeat, V1_MESSAGES.replyOk]) {
      const current = { ...m, v: 2 } as Envelope;
      expect(decodeEnvelope(S, encodeEnvelope(current))).toEqual(current);
    }
  });

  it('reads every pinned v1 message, upgraded to the current shape with v kept', () => {
    const request = decodeEnvelope(S, enc(V1_MESSAGES.request), 'request');
    expect(request).toEqual({ ...V1_MESSAGES.request });
    expect(request.kind === 'request' && request.operationId).toBe(undefined);
    const error = decodeEnvelope(S, enc(V1_MESSAGES.replyError), 'reply');
    expect(error.kind === 'reply' && error.outcome).toEqual({
      ok: false,
      error: { code: 'NLFS_DRIVER_ERROR', message: 'docker spawn failed: boom', details: {} },
    });
    expect(error.v).toBe(1);
    for (const m of [V1_MESSAGES.replyOk, V1_MESSAGES.event, V1_MESSAGES.heartbeat]) {
      expect(decodeEnvelope(S, enc(m))).toEqual(m);
    }
  });

  it('writes v1 exactly in the pinned shape (dropping what v1 cannot carry)', () => {
    const request = { ...V1_MESSAGES.request, v: 2, operationId: 'op-9' } as Envelope;
    expect(dec(encodeEnvelope(request, 1))).toEqual(V1_MESSAGES.request);
    const reply = {
      ...V1_MESSAGES.replyError,
      v: 2,
      outcome: {
        ok: false,
        error: {
          code: 'NLFS_DRIVER_ERROR',
          message: 'docker spawn failed: boom',
          details: { retryable: true },
        },
      },
    } as Envelope;
    expect(dec(encodeEnvelope(reply, 1))).toEqual(V1_MESSAGES.replyError);
    for (const m of [V1_MESSAGES.replyOk, V1_MESSAGES.event, V1_MESSAGES.heartbeat]) {
      expect(dec(encodeEnvelope({ ...m, v: 2 } as Envelope, 1))).toEqual(m);
    }
  });

  it.each([0, 3, '2', null, undefined])(
    'refuses version %j with a typed error naming the accepted ones',
    (v) => {
      const e = thrown(() => decodeEnvelope(S, enc({ ...V1_MESSAGES.request, v })));
      expect(e.code).toBe(BusErrorCode.VersionUnsupported);
      expect(e.details).toMatchObject({ subject: S, version: v, accepted: [2, 1] });
    },
  );

  it('refuses what is not JSON, not an object, or breaks the schema, naming the field and rule', () => {
    expect(thrown(() => decodeEnvelope(S, new Uint8Array([0xff, 0xfe]))).details).toMatchObject({
      issues: [{ rule: 'json' }],
    });
    expect(thrown(() => decodeEnvelope(S, enc([1, 2]))).code).toBe(BusErrorCode.MessageInvalid);
    const noDeadline: Record<string, unknown> = { ...V1_MESSAGES.request, v: 2 };
    delete noDeadline.deadline;
    const e = thrown(() => decodeEnvelope(S, enc(noDeadline)));
    expect(e.code).toBe(BusErrorCode.MessageInvalid);
    expect(e.details?.issues).toEqual([expect.objectContaining({ path: 'deadline', rule: 'invalid_type' })]);
    const badSender = thrown(() => decodeEnvelope(S, enc({ ...V1_MESSAGES.event, v: 2, sender: 'a.b' })));
    expect(badSender.details?.issues).toEqual([
      expect.objectContaining({ path: 'sender', rule: 'invalid_format' }),
    ]);
    const v2OnlyFieldOnV1 = thrown(() =>
      decodeEnvelope(S, enc({ ...V1_MESSAGES.replyError, outcome: { ok: false, error: { code: '' } } })),
    );
    expect(v2OnlyFieldOnV1.code).toBe(BusErrorCode.MessageInvalid);
  });

  it('refuses a message of another kind than expected', () => {
    const e = thrown(() => decodeEnvelope(S, enc(V1_MESSAGES.event), 'request'));
    expect(e.code).toBe(BusErrorCode.MessageInvalid);
    expect(e.details?.issues).toEqual([expect.objectContaining({ path: 'kind' })]);
  });
});
