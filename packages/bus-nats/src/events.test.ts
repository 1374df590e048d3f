import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCode } from '@nova-lfs/core';
import { firstValueFrom, type Subscription, take, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineBusEvent } from './bus-event.js';
import { connectBus } from './connection.js';
import { BusErrorCode } from './errors.js';
import { BusEventPublisher } from './event-publisher.js';
import { BusEventSubscriber, type ReceivedBusEvent } from './event-subscriber.js';
import { available, RecordingLogger, uniqueHostId, waitFor } from './nats-env.test-helper.js';
import { eventsSubject } from './subjects.js';
import { defaultNatsUrl } from './testing/index.js';

const power = defineBusEvent(
  'instance.power',
  z.object({ instanceId: z.string().min(1), powerState: z.enum(['running', 'shutdown']) }),
);
const other = defineBusEvent('instance.other', z.object({}));

describe.skipIf(!available)('events over subjects (shared nats-server)', () => {
  let agentNc: NatsConnection;
  let controlNc: NatsConnection;
  const hostA = uniqueHostId('a');
  const hostB = uniqueHostId('b');
  const log = new RecordingLogger();

  beforeAll(async () => {
    agentNc = await connectBus({ servers: defaultNatsUrl });
    controlNc = await connectBus({ servers: defaultNatsUrl });
  });
  afterAll(async () => {
    await agentNc?.close();
    await controlNc?.close();
  });

  it('delivers validated events of one type from one host or all hosts', async () => {
    const subscriber = new BusEventSubscriber(controlNc, { logger: log });
    const fromA = firstValueFrom(subscriber.events$(power, { hostId: hostA }).pipe(take(2), toArray()));
    const fromAll: ReceivedBusEvent<unknown>[] = [];
    const all = subscriber.events$(power).subscribe((e) => {
      if (e.hostId === hostA || e.hostId === hostB) fromAll.push(e);
    });
    await controlNc.flush();
    const a = new BusEventPublisher(agentNc, { hostId: hostA });
    const b = new BusEventPublisher(agentNc, { hostId: hostB });
    a.publish(other, {});
    const id1 = a.publish(power, { instanceId: 'i-1', powerState: 'running' });
    b.publish(power, { instanceId: 'i-2', powerState: 'running' });
    a.publish(power, { instanceId: 'i-1', powerState: 'shutdown' });
    await a.flush();
    const got = await fromA;
    expect(got.map((e) => [e.hostId, e.type, e.payload])).toEqual([
      [hostA, 'instance.power', { instanceId: 'i-1', powerState: 'running' }],
      [hostA, 'instance.power', { instanceId: 'i-1', powerState: 'shutdown' }],
    ]);
    expect(got[0]?.id).toBe(id1);
    expect(got[0]?.version).toBe(2);
    await waitFor(() => fromAll.length === 3, 2000, 'three events on the wildcard');
    expect(fromAll.map((e) => e.hostId).sort()).toEqual([hostA, hostA, hostB].sort());
    all.unsubscribe();
    expect(log.records).toEqual([]);
  });

  it('refuses an invalid payload before publishing, naming the field', () => {
    const a = new BusEventPublisher(agentNc, { hostId: hostA });
    try {
      a.publish(power, { instanceId: 'i-1', powerState: 'exploded' as 'running' });
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: ErrorCode.Validation });
      expect((e as { details: { issues: { path: string }[] } }).details.issues[0]?.path).toBe(
        'payload.powerState',
      );
    }
  });

  it('refuses and logs forged, malformed, stale and badly typed events; accepts a v1 agent', async () => {
    const host = uniqueHostId('f');
    const subscriber = new BusEventSubscriber(controlNc, { logger: log });
    const received: ReceivedBusEvent<unknown>[] = [];
    const sub: Subscription = subscriber.events$(power, { hostId: host }).subscribe((e) => received.push(e));
    await controlNc.flush();
    const base = {
      v: 2,
      kind: 'event',
      id: randomUUID(),
      sender: host,
      sentAt: Date.now(),
      type: 'instance.power',
      payload: { instanceId: 'i-1', powerState: 'running' },
    };
    const send = (m: unknown) => agentNc.publish(eventsSubject(host), JSON.stringify(m));
    const before = log.records.length;
    send({ ...base, sender: uniqueHostId('other') });
    send({ ...base, v: 0 });
    send({ ...base, payload: { instanceId: '' } });
    send({ ...base, sentAt: 'yesterday' });
    agentNc.publish(eventsSubject(host), 'not json');
    send({ ...base, v: 1, id: 'v1-event' });
    await agentNc.flush();
    await waitFor(() => received.length === 1 && log.records.length - before === 5, 2000, 'refusals');
    expect(received.map((e) => [e.id, e.version])).toEqual([['v1-event', 1]]);
    expect(log.codes().slice(before)).toEqual([
      BusErrorCode.SenderMismatch,
      BusErrorCode.VersionUnsupported,
      BusErrorCode.MessageInvalid,
      BusErrorCode.MessageInvalid,
      BusErrorCode.MessageInvalid,
    ]);
    sub.unsubscribe();
  });
});
