import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { DriverError, ErrorCode, isNovaError } from '@nova-lfs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { connectBus } from './connection.js';
import { encodeEnvelope } from './envelope.js';
import { BusErrorCode, RemoteCallError, RpcDeadlineExceededError } from './errors.js';
import { available, RecordingLogger, sleep, uniqueHostId, waitFor } from './nats-env.test-helper.js';
import { BusRpcClient } from './rpc-client.js';
import { defineRpcMethod } from './rpc-method.js';
import { BusRpcServer } from './rpc-server.js';
import { rpcSubject } from './subjects.js';
import { defaultNatsUrl } from './testing/index.js';

const spawn = defineRpcMethod(
  'driver.spawn',
  z.object({ instanceId: z.string().min(1), memoryMb: z.number().int().positive() }),
  z.object({ instanceId: z.string(), runs: z.number() }),
);
const fail = defineRpcMethod('driver.fail', z.object({ kind: z.enum(['driver', 'plain']) }), z.null());
const slow = defineRpcMethod('driver.slow', z.object({ ms: z.number() }), z.object({ aborted: z.boolean() }));
const unserved = defineRpcMethod('driver.unserved', z.object({}), z.null());
const lying = defineRpcMethod('driver.lying', z.object({}), z.object({ n: z.number() }));

async function thrown(
  p: Promise<unknown>,
): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string; details?: Record<string, unknown> };
  }
  throw new Error('did not reject');
}

describe.skipIf(!available)('RPC over NATS request/reply (shared nats-server)', () => {
  let agentNc: NatsConnection;
  let controlNc: NatsConnection;
  let server: BusRpcServer;
  let client: BusRpcClient;
  const hostId = uniqueHostId();
  const agentLog = new RecordingLogger();
  const controlLog = new RecordingLogger();
  const runs = new Map<string, number>();
  const slowAborted: unknown[] = [];

  beforeAll(async () => {
    agentNc = await connectBus({ servers: defaultNatsUrl, name: `test-agent-${hostId}` });
    controlNc = await connectBus({ servers: defaultNatsUrl, name: 'test-control' });
    server = new BusRpcServer(agentNc, { hostId, logger: agentLog, idempotency: { maxEntries: 100 } });
    server
      .handle(spawn, async (p, ctx) => {
        const n = (runs.get(p.instanceId) ?? 0) + 1;
        runs.set(p.instanceId, n);
        expect(ctx.hostId).toBe(hostId);
        expect(ctx.sender).toBe('control-1');
        await sleep(p.memoryMb > 1000 ? 300 : 0);
        return { instanceId: p.instanceId, runs: n };
      })
      .handle(fail, (p) => {
        if (p.kind === 'driver') {
          throw new DriverError(
            { driver: 'docker', operation: 'spawn', instanceId: 'i-9', retryable: false, reschedule: true },
            'no such image',
          );
        }
        throw new TypeError('plain failure');
      })
      .handle(slow, async (p, ctx) => {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, p.ms);
          ctx.signal.addEventListener('abort', () => {
            slowAborted.push(ctx.signal.reason);
            clearTimeout(t);
            resolve();
          });
        });
        return { aborted: ctx.signal.aborted };
      })
      .handle(lying, () => ({ n: 'not a number' }) as unknown as { n: number });
    await server.start();
    client = new BusRpcClient(controlNc, { senderId: 'control-1', logger: controlLog });
  });

  afterAll(async () => {
    client?.close();
    await server?.stop();
    await agentNc?.close();
    await controlNc?.close();
  });

  it('calls a handler and returns its validated result', async () => {
    const r = await client.call(hostId, spawn, { instanceId: 'i-1', memoryMb: 64 }, { deadlineMs: 2000 });
    expect(r).toEqual({ instanceId: 'i-1', runs: 1 });
  });

  it('registering a method twice is refused', () => {
    expect(() => server.handle(spawn, () => ({ instanceId: '', runs: 0 }))).toThrow(
      expect.objectContaining({ code: ErrorCode.Configuration }),
    );
  });

  it('runs a call once per operation id: concurrent and later retries get the first result', async () => {
    const op = randomUUID();
    const payload = { instanceId: 'i-idem', memoryMb: 2048 };
    const [a, b] = await Promise.all([
      client.call(hostId, spawn, payload, { operationId: op }),
      client.call(hostId, spawn, payload, { operationId: op }),
    ]);
    const c = await client.call(hostId, spawn, payload, { operationId: op });
    expect([a, b, c]).toEqual([
      { instanceId: 'i-idem', runs: 1 },
      { instanceId: 'i-idem', runs: 1 },
      { instanceId: 'i-idem', runs: 1 },
    ]);
    expect(runs.get('i-idem')).toBe(1);
    // Another operation id runs again.
    expect(await client.call(hostId, spawn, payload, { operationId: randomUUID() })).toEqual({
      instanceId: 'i-idem',
      runs: 2,
    });
  });

  it('a retry after a timeout with the same operation id gets the first run result, not a second run', async () => {
    const op = randomUUID();
    const payload = { instanceId: 'i-timeout', memoryMb: 4096 };
    const e = await thrown(client.call(hostId, spawn, payload, { operationId: op, deadlineMs: 100 }));
    expect(e).toBeInstanceOf(RpcDeadlineExceededError);
    expect(e.code).toBe(ErrorCode.DeadlineExceeded);
    expect(e.details).toMatchObject({
      hostId,
      method: 'driver.spawn',
      operation: 'driver.spawn',
      operationId: op,
    });
    expect(e.details?.timeoutMs).toBe(100);
    const r = await client.call(hostId, spawn, payload, { operationId: op, deadlineMs: 2000 });
    expect(r).toEqual({ instanceId: 'i-timeout', runs: 1 });
    expect(runs.get('i-timeout')).toBe(1);
  });

  it('the handler signal aborts at the deadline', async () => {
    const startedAt = Date.now();
    const e = await thrown(client.call(hostId, slow, { ms: 30_000 }, { deadlineMs: 150 }));
    expect(e.code).toBe(ErrorCode.DeadlineExceeded);
    // well before the 30 s the handler would take unaborted, with room for a loaded 2-CPU machine
    // (a CI run beside other suites once took over 2 s here)
    await waitFor(() => slowAborted.length === 1, 8000, 'handler aborted');
    expect(slowAborted[0]).toMatchObject({ code: ErrorCode.DeadlineExceeded });
    expect(Date.now() - startedAt).toBeLessThan(10_000);
  });

  it('a remote Nova error crosses the wire with its code, message and details, never its stack', async () => {
    const e = await thrown(client.call(hostId, fail, { kind: 'driver' }));
    expect(e).toBeInstanceOf(RemoteCallError);
    expect(isNovaError(e, ErrorCode.Driver)).toBe(true);
    expect(e.details).toEqual({
      driver: 'docker',
      operation: 'spawn',
      instanceId: 'i-9',
      retryable: false,
      reschedule: true,
    });
    expect((e as RemoteCallError).hostId).toBe(hostId);
    expect((e as RemoteCallError).method).toBe('driver.fail');
    expect(JSON.stringify(e.details)).not.toContain('at ');
    expect(e.stack).not.toContain('rpc-server');
    const plain = await thrown(client.call(hostId, fail, { kind: 'plain' }));
    expect(plain.code).toBe(ErrorCode.Unexpected);
    expect(plain.details).toEqual({});
  });

  it('an unknown method and an unserved host are typed errors', async () => {
    const unknown = await thrown(client.call(hostId, unserved, {}));
    expect(unknown.code).toBe(BusErrorCode.UnknownMethod);
    expect(unknown.details).toEqual({ method: 'driver.unserved', hostId });
    const nobody = await thrown(client.call(uniqueHostId('gone'), spawn, { instanceId: 'x', memoryMb: 1 }));
    expect(nobody.code).toBe(BusErrorCode.NoResponder);
  });

  it('an invalid payload is refused by the client before sending, naming the field', async () => {
    const e = await thrown(client.call(hostId, spawn, { instanceId: '', memoryMb: -1 }));
    expect(e.code).toBe(ErrorCode.Validation);
    expect(((e.details?.issues ?? []) as { path: string }[]).map((i) => i.path).sort()).toEqual([
      'payload.instanceId',
      'payload.memoryMb',
    ]);
    expect((await thrown(client.call('a.b', spawn, { instanceId: 'x', memoryMb: 1 }))).code).toBe(
      ErrorCode.Validation,
    );
  });

  it('a handler result breaking its schema is refused (and logged by the agent)', async () => {
    const e = await thrown(client.call(hostId, lying, {}));
    expect(e.code).toBe(BusErrorCode.MessageInvalid);
    expect(agentLog.records.some((r) => r.fields.method === 'driver.lying')).toBe(true);
  });

  describe('forged or malformed requests are refused and logged, never acted on', () => {
    const raw = async (subject: string, body: unknown) => {
      const data = body instanceof Uint8Array ? body : new TextEncoder().encode(JSON.stringify(body));
      const msg = await controlNc.request(subject, data, { timeout: 2000 });
      return JSON.parse(new TextDecoder().decode(msg.data)) as {
        v: number;
        sender: string;
        outcome: { ok: boolean; error?: { code: string; details: Record<string, unknown> } };
      };
    };
    const request = (over: Record<string, unknown> = {}) => ({
      v: 2,
      kind: 'request',
      id: randomUUID(),
      sender: 'control-1',
      sentAt: Date.now(),
      method: 'driver.spawn',
      deadline: Date.now() + 5000,
      payload: { instanceId: 'i-forged', memoryMb: 1 },
      ...over,
    });

    it.each([
      ['not JSON', new Uint8Array([1, 2, 3]), BusErrorCode.MessageInvalid],
      ['a stale version', request({ v: 0 }), BusErrorCode.VersionUnsupported],
      ['a future version', request({ v: 3 }), BusErrorCode.VersionUnsupported],
      ['no deadline', request({ deadline: undefined }), BusErrorCode.MessageInvalid],
      ['an expired deadline', request({ deadline: Date.now() - 1 }), ErrorCode.DeadlineExceeded],
      [
        'a bad payload',
        request({ payload: { instanceId: 'i-forged', memoryMb: 'lots' } }),
        ErrorCode.Validation,
      ],
      ['another method than its subject', request({ method: 'driver.fail' }), BusErrorCode.MessageInvalid],
      [
        'an event instead of a request',
        { ...request(), kind: 'event', type: 'x' },
        BusErrorCode.MessageInvalid,
      ],
    ])('%s', async (_what, body, code) => {
      const before = agentLog.records.length;
      const reply = await raw(rpcSubject(hostId, 'driver.spawn'), body);
      expect(reply.outcome.ok).toBe(false);
      expect(reply.outcome.error?.code).toBe(code);
      expect(reply.sender).toBe(hostId);
      expect(agentLog.records.slice(before).map((r) => r.fields.code)).toEqual([code]);
      expect(runs.has('i-forged')).toBe(false);
    });
  });

  describe('rolling upgrade: a v1 control plane against this agent', () => {
    it('a v1 request (no operation id) is served and answered in v1', async () => {
      const req = {
        v: 1,
        kind: 'request',
        id: randomUUID(),
        sender: 'old-control',
        sentAt: Date.now(),
        method: 'driver.fail',
        deadline: Date.now() + 5000,
        payload: { kind: 'driver' },
      };
      const msg = await controlNc.request(rpcSubject(hostId, 'driver.fail'), JSON.stringify(req), {
        timeout: 2000,
      });
      const reply = JSON.parse(new TextDecoder().decode(msg.data));
      expect(reply.v).toBe(1);
      expect(reply.inReplyTo).toBe(req.id);
      expect(reply.outcome).toEqual({
        ok: false,
        error: { code: 'NLFS_DRIVER_ERROR', message: expect.any(String) },
      });
    });
  });

  describe('replies are validated by the control plane', () => {
    const fakeHost = uniqueHostId('fake');
    let sub: { unsubscribe(): void } | undefined;
    afterAll(() => sub?.unsubscribe());

    it('a reply claiming another sender, or malformed, is refused and logged', async () => {
      let mode: 'sender' | 'garbage' = 'sender';
      sub = agentNc.subscribe(rpcSubject(fakeHost, 'driver.spawn'), {
        callback: (_err, msg) => {
          const req = JSON.parse(new TextDecoder().decode(msg.data)) as { id: string };
          if (mode === 'garbage') {
            msg.respond('{"v":2,"kind":"reply"}');
            return;
          }
          msg.respond(
            encodeEnvelope({
              v: 2,
              kind: 'reply',
              id: randomUUID(),
              sender: 'someone-else',
              sentAt: Date.now(),
              inReplyTo: req.id,
              outcome: { ok: true, result: { instanceId: 'x', runs: 1 } },
            }),
          );
        },
      });
      await agentNc.flush();
      const forged = await thrown(client.call(fakeHost, spawn, { instanceId: 'x', memoryMb: 1 }));
      expect(forged.code).toBe(BusErrorCode.SenderMismatch);
      expect(forged.details).toMatchObject({ expected: fakeHost, claimed: 'someone-else' });
      mode = 'garbage';
      const garbage = await thrown(client.call(fakeHost, spawn, { instanceId: 'x', memoryMb: 1 }));
      expect(garbage.code).toBe(BusErrorCode.MessageInvalid);
      expect(controlLog.codes().slice(-2)).toEqual([
        BusErrorCode.SenderMismatch,
        BusErrorCode.MessageInvalid,
      ]);
    });
  });
});
