import type { NatsConnection, Status } from '@nats-io/transport-node';
import { firstValueFrom, type Subscription, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineBusEvent } from './bus-event.js';
import { connectBus } from './connection.js';
import { BusErrorCode, BusPermissionError } from './errors.js';
import { BusEventPublisher } from './event-publisher.js';
import { BusEventSubscriber, type ReceivedBusEvent } from './event-subscriber.js';
import { HeartbeatPublisher } from './heartbeat-publisher.js';
import { HostLiveness } from './host-liveness.js';
import { binaryAvailable, RecordingLogger, waitFor } from './nats-env.test-helper.js';
import { agentInboxPrefix, agentPermissions } from './permissions.js';
import { BusRpcClient } from './rpc-client.js';
import { defineRpcMethod } from './rpc-method.js';
import { BusRpcServer } from './rpc-server.js';
import { controlPlaneRpcSubject, eventsSubject } from './subjects.js';
import { type NatsTestServer, startNatsServer } from './testing/index.js';

const ping = defineRpcMethod('agent.ping', z.object({}), z.object({ hostId: z.string() }));
const power = defineRpcMethod('instance.power', z.object({ instanceId: z.string() }), z.null());
const powerEvent = defineBusEvent('instance.power', z.object({ instanceId: z.string() }));
const imageRead = defineRpcMethod(
  'image.read',
  z.object({ imageId: z.string() }),
  z.object({ caller: z.string(), imageId: z.string() }),
);

async function thrown(p: Promise<unknown>): Promise<{ code?: string; details?: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; details?: Record<string, unknown> };
  }
  throw new Error('did not reject');
}

function collectStatus(nc: NatsConnection): Status[] {
  const seen: Status[] = [];
  void (async () => {
    for await (const s of nc.status()) seen.push(s);
  })();
  return seen;
}

describe.skipIf(!binaryAvailable)('per-agent NATS credentials and permissions (own nats-server)', () => {
  let server: NatsTestServer;
  let control: NatsConnection;
  let agentA: NatsConnection;
  let agentB: NatsConnection;
  const log = new RecordingLogger();

  beforeAll(async () => {
    server = await startNatsServer({
      users: [
        { user: 'control', password: 'control-secret' },
        { user: 'agent-a', password: 'a-secret', ...agentPermissions('host-a') },
        { user: 'agent-b', password: 'b-secret', ...agentPermissions('host-b') },
      ],
    });
    control = await connectBus({ servers: server.url, user: 'control', pass: 'control-secret' });
    agentA = await connectBus({
      servers: server.url,
      user: 'agent-a',
      pass: 'a-secret',
      inboxPrefix: agentInboxPrefix('host-a'),
    });
    agentB = await connectBus({
      servers: server.url,
      user: 'agent-b',
      pass: 'b-secret',
      inboxPrefix: agentInboxPrefix('host-b'),
    });
  });

  afterAll(async () => {
    await Promise.all([control?.close(), agentA?.close(), agentB?.close()]);
    await server?.dispose();
  });

  it('an agent serves RPCs, publishes events and beats within its own permissions', async () => {
    const rpc = new BusRpcServer(agentA, { hostId: 'host-a', logger: log }).handle(ping, (_p, ctx) => ({
      hostId: ctx.hostId,
    }));
    await rpc.start();
    const client = new BusRpcClient(control, { senderId: 'control-1', logger: log });
    expect(await client.call('host-a', ping, {}, { deadlineMs: 2000 })).toEqual({ hostId: 'host-a' });

    const events = firstValueFrom(new BusEventSubscriber(control, { logger: log }).events$(powerEvent));
    await control.flush();
    new BusEventPublisher(agentA, { hostId: 'host-a' }).publish(powerEvent, { instanceId: 'i-1' });
    expect(await events).toMatchObject({ hostId: 'host-a', payload: { instanceId: 'i-1' } });

    const liveness = new HostLiveness(control, { downAfterMs: 5000, logger: log });
    await liveness.start();
    const beat = new HeartbeatPublisher(agentA, { hostId: 'host-a', intervalMs: 1000, logger: log });
    await beat.start();
    await waitFor(() => liveness.isUp('host-a'), 2000, 'host-a up');
    await beat.stop();
    await waitFor(() => !liveness.isUp('host-a'), 2000, 'host-a deregistered');
    liveness.stop();
    client.close();
    await rpc.stop();
    expect(log.records).toEqual([]);
  });

  it("agent A cannot publish on B's subjects: the server refuses with a permission error", async () => {
    const statusA = collectStatus(agentA);
    const atB: ReceivedBusEvent<unknown>[] = [];
    const watch: Subscription = new BusEventSubscriber(control, { logger: log })
      .events$(powerEvent, { hostId: 'host-b' })
      .subscribe((e) => atB.push(e));
    await control.flush();

    // An event as B, on B's subject.
    new BusEventPublisher(agentA, { hostId: 'host-b' }).publish(powerEvent, { instanceId: 'i-x' });
    await agentA.flush();
    await waitFor(() => statusA.some((s) => s.type === 'error'), 2000, 'permission error');
    const error = statusA.find((s) => s.type === 'error');
    expect(error?.type === 'error' && error.error.name).toBe('PermissionViolationError');
    expect(error?.type === 'error' && (error.error as { subject?: string }).subject).toBe(
      eventsSubject('host-b'),
    );

    // An RPC to B from A's connection: refused by the server, a typed error.
    const asA = new BusRpcClient(agentA, { senderId: 'host-a', logger: log });
    const e = await thrown(asA.call('host-b', power, { instanceId: 'i-x' }, { deadlineMs: 2000 }));
    expect(e).toBeInstanceOf(BusPermissionError);
    expect(e.details).toMatchObject({
      subject: 'nova.agent.host-b.rpc.instance.power',
      operation: 'publish',
    });
    asA.close();

    // A heartbeat as B: A may only write its own key.
    const forgedBeat = await thrown(
      new HeartbeatPublisher(agentA, { hostId: 'host-b', logger: log }).start(),
    );
    expect(forgedBeat.code).toBe(BusErrorCode.PermissionDenied);
    expect(forgedBeat.details).toMatchObject({ subject: '$KV.nova_hosts.host-b' });

    // Nor listen to B's subjects.
    const spy = await thrown(
      firstValueFrom(
        new BusEventSubscriber(agentA, { logger: log }).events$(powerEvent, { hostId: 'host-b' }),
      ),
    );
    expect(spy.code).toBe(BusErrorCode.PermissionDenied);
    expect(spy.details).toMatchObject({ subject: eventsSubject('host-b'), operation: 'subscription' });

    await control.flush();
    expect(atB).toEqual([]);
    watch.unsubscribe();
  });

  it("a message with a forged sender on A's own subject is refused by the control plane", async () => {
    const received: ReceivedBusEvent<unknown>[] = [];
    const before = log.records.length;
    const all = new BusEventSubscriber(control, { logger: log })
      .events$(powerEvent)
      .subscribe((e) => received.push(e));
    await control.flush();
    agentA.publish(
      eventsSubject('host-a'),
      JSON.stringify({
        v: 2,
        kind: 'event',
        id: 'forged-1',
        sender: 'host-b',
        sentAt: Date.now(),
        type: 'instance.power',
        payload: { instanceId: 'i-b' },
      }),
    );
    await agentA.flush();
    await waitFor(() => log.records.length > before, 2000, 'refusal logged');
    expect(log.records.slice(before)[0]?.fields).toMatchObject({
      code: BusErrorCode.SenderMismatch,
      details: { subject: eventsSubject('host-a'), expected: 'host-a', claimed: 'host-b' },
    });
    expect(received).toEqual([]);
    all.unsubscribe();
  });

  it('an agent calls a control plane only as itself (image reads), and cannot serve or spy on those calls', async () => {
    const served: string[] = [];
    const cp = new BusRpcServer(control, { hostId: 'cp-1', serves: 'controlPlane', logger: log }).handle(
      imageRead,
      (p, ctx) => {
        served.push(ctx.sender);
        return { caller: ctx.sender, imageId: p.imageId };
      },
    );
    await cp.start();
    const asA = new BusRpcClient(agentA, { senderId: 'host-a', logger: log });
    expect(await asA.callControlPlane('cp-1', imageRead, { imageId: 'img-1' }, { deadlineMs: 2000 })).toEqual(
      {
        caller: 'host-a',
        imageId: 'img-1',
      },
    );

    // As B, from A's connection: the server refuses the subject.
    const asB = new BusRpcClient(agentA, { senderId: 'host-b', logger: log });
    const e = await thrown(
      asB.callControlPlane('cp-1', imageRead, { imageId: 'img-1' }, { deadlineMs: 2000 }),
    );
    expect(e).toBeInstanceOf(BusPermissionError);
    expect(e.details).toMatchObject({ subject: controlPlaneRpcSubject('cp-1', 'host-b', 'image.read') });
    asB.close();

    // On A's own subject but claiming B: the control plane refuses it before any handler runs.
    const before = log.records.length;
    const forged = await agentA.request(
      controlPlaneRpcSubject('cp-1', 'host-a', 'image.read'),
      JSON.stringify({
        v: 2,
        kind: 'request',
        id: 'forged-2',
        sender: 'host-b',
        sentAt: Date.now(),
        method: 'image.read',
        deadline: Date.now() + 2000,
        payload: { imageId: 'img-1' },
      }),
      { timeout: 2000 },
    );
    expect(JSON.parse(forged.string()).outcome.error.code).toBe(BusErrorCode.SenderMismatch);
    expect(log.records.slice(before)[0]?.fields).toMatchObject({ code: BusErrorCode.SenderMismatch });

    // Nor may an agent listen to the requests a control plane gets (its own included).
    const spy = await new Promise<Error>((resolve) => {
      agentA.subscribe(controlPlaneRpcSubject('cp-1', 'host-a', '>'), {
        callback: (err) => {
          if (err) resolve(err);
        },
      });
    });
    expect(spy.name).toBe('PermissionViolationError');
    expect(served).toEqual(['host-a']);
    asA.close();
    await cp.stop();
  });

  it('bad credentials are refused at connect', async () => {
    const e = await thrown(
      connectBus({ servers: server.url, user: 'agent-a', pass: 'wrong', connectTimeoutMs: 2000 }),
    );
    expect(e.code).toBe(BusErrorCode.Unavailable);
    expect((e as { cause?: Error }).cause?.name).toBe('AuthorizationError');
    const stolen = await thrown(connectBus({ servers: server.url, user: 'agent-b', pass: 'a-secret' }));
    expect(stolen.code).toBe(BusErrorCode.Unavailable);
  });

  it('agent A cannot read the replies other agents send the control plane (no subscription on _INBOX.>)', async () => {
    const refused = new Promise<Error>((resolve) => {
      agentA.subscribe('_INBOX.>', {
        callback: (err) => {
          if (err) resolve(err);
        },
      });
    });
    const e = await refused;
    expect(e.name).toBe('PermissionViolationError');
    expect((e as { operation?: string }).operation).toBe('subscription');
  });

  it("agent B cannot subscribe to A's events either: the Observable errors, never hangs", async () => {
    // The subscription permission error ends the Observable: toArray completes via error, never hangs.
    const e = await thrown(
      firstValueFrom(
        new BusEventSubscriber(agentB, { logger: log })
          .events$(powerEvent, { hostId: 'host-a' })
          .pipe(toArray()),
      ),
    );
    expect(e.code).toBe(BusErrorCode.PermissionDenied);
  });
});
