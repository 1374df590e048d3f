import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCode } from '@nova-lfs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { connectBus } from './connection.js';
import { BusErrorCode, RpcConnectionLostError } from './errors.js';
import { HeartbeatPublisher } from './heartbeat-publisher.js';
import { HostLiveness, type HostLivenessChange } from './host-liveness.js';
import { binaryAvailable, RecordingLogger, sleep, waitFor } from './nats-env.test-helper.js';
import { BusRpcClient } from './rpc-client.js';
import { defineRpcMethod } from './rpc-method.js';
import { BusRpcServer } from './rpc-server.js';
import { type NatsTestServer, startNatsServer } from './testing/index.js';

const build = defineRpcMethod(
  'driver.spawn',
  z.object({ instanceId: z.string(), ms: z.number() }),
  z.object({ instanceId: z.string(), runs: z.number() }),
);

function reconnects(nc: NatsConnection): { count: number } {
  const seen = { count: 0 };
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') seen.count++;
  })();
  return seen;
}

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

describe.skipIf(!binaryAvailable)('a lost NATS connection (own nats-server stopped and started)', () => {
  let server: NatsTestServer;
  let agentNc: NatsConnection;
  let controlNc: NatsConnection;
  const log = new RecordingLogger();
  const runs = new Map<string, number>();
  let entered: () => void = () => undefined;

  beforeAll(async () => {
    server = await startNatsServer();
    const backoff = { initialDelayMs: 50, maxDelayMs: 400 };
    agentNc = await connectBus({ servers: server.url, name: 'agent', backoff });
    controlNc = await connectBus({ servers: server.url, name: 'control', backoff });
  });
  afterAll(async () => {
    await agentNc?.close();
    await controlNc?.close();
    await server?.dispose();
  });

  it('an in-flight call ends with a typed error at once; after reconnecting, its retry returns the first run', async () => {
    const rpc = new BusRpcServer(agentNc, { hostId: 'host-r', logger: log }).handle(build, async (p) => {
      entered();
      await sleep(p.ms);
      const n = (runs.get(p.instanceId) ?? 0) + 1;
      runs.set(p.instanceId, n);
      return { instanceId: p.instanceId, runs: n };
    });
    await rpc.start();
    const client = new BusRpcClient(controlNc, { senderId: 'control-1', logger: log });
    const agentBack = reconnects(agentNc);
    const controlBack = reconnects(controlNc);
    const op = randomUUID();

    const handlerRunning = new Promise<void>((r) => {
      entered = r;
    });
    const call = client.call(
      'host-r',
      build,
      { instanceId: 'i-1', ms: 1500 },
      { operationId: op, deadlineMs: 20_000 },
    );
    const outcome = thrown(call);
    await handlerRunning;
    const stoppedAt = Date.now();
    await server.stop();
    const e = await outcome;
    expect(e).toBeInstanceOf(RpcConnectionLostError);
    expect(e.code).toBe(BusErrorCode.ConnectionLost);
    expect(e.details).toMatchObject({
      hostId: 'host-r',
      method: 'driver.spawn',
      operationId: op,
      retryable: true,
    });
    expect(Date.now() - stoppedAt).toBeLessThan(1000);
    expect(client.pendingCalls).toBe(0);

    // While the server is down a call does not hang: it ends at its deadline.
    const during = await thrown(
      client.call('host-r', build, { instanceId: 'i-2', ms: 0 }, { deadlineMs: 300 }),
    );
    expect(during.code).toBe(ErrorCode.DeadlineExceeded);

    await server.start();
    await waitFor(() => agentBack.count >= 1 && controlBack.count >= 1, 10_000, 'both reconnected');
    // The handler finished during the outage; the retry gets that result and does not run it again.
    await waitFor(() => runs.get('i-1') === 1, 3000, 'first run finished');
    const retry = await client.call(
      'host-r',
      build,
      { instanceId: 'i-1', ms: 1500 },
      { operationId: op, deadlineMs: 5000 },
    );
    expect(retry).toEqual({ instanceId: 'i-1', runs: 1 });
    expect(runs.get('i-1')).toBe(1);
    client.close();
    await rpc.stop();
  });

  it('heartbeats and liveness carry on after the server restarts (JetStream state kept on disk)', async () => {
    const liveness = new HostLiveness(controlNc, { downAfterMs: 3000, checkIntervalMs: 50, logger: log });
    const changes: HostLivenessChange[] = [];
    liveness.changes$.subscribe((c) => changes.push(c));
    await liveness.start();
    const beat = new HeartbeatPublisher(agentNc, { hostId: 'host-hb', intervalMs: 100, logger: log });
    await beat.start();
    await waitFor(() => liveness.isUp('host-hb'), 2000, 'up');
    const agentBack = reconnects(agentNc);
    const controlBack = reconnects(controlNc);
    await server.stop();
    await sleep(300);
    await server.start();
    await waitFor(() => agentBack.count >= 1 && controlBack.count >= 1, 10_000, 'both reconnected');
    const beatsAfter = beat.beats;
    await waitFor(() => beat.beats > beatsAfter + 3, 5000, 'beats resume');
    // Still up past downAfterMs: the beats after the restart reach the liveness watch.
    await sleep(3500);
    expect(liveness.isUp('host-hb')).toBe(true);
    await beat.stop();
    await waitFor(() => !liveness.isUp('host-hb'), 3000, 'deregistered after restart');
    expect(liveness.status('host-hb')?.reason).toBe('deregistered');
    liveness.stop();
    // The restart was shorter than downAfterMs: the host never went down in between.
    expect(changes.map((c) => [c.up, c.reason])).toEqual([
      [true, 'beat'],
      [false, 'deregistered'],
    ]);
  });
});
