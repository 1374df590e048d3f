import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus } from './connection.js';
import { BusErrorCode } from './errors.js';
import { HeartbeatPublisher } from './heartbeat-publisher.js';
import { HostLiveness, type HostLivenessChange } from './host-liveness.js';
import { available, RecordingLogger, sleep, uniqueHostId, waitFor } from './nats-env.test-helper.js';
import { defaultNatsUrl } from './testing/index.js';

describe.skipIf(!available)('host heartbeats in JetStream KV (shared nats-server)', () => {
  let agentNc: NatsConnection;
  let controlNc: NatsConnection;
  // A bucket of this test file's own, so its TTL and keys touch nothing else.
  const bucket = `nova_hosts_test_${uniqueHostId('t').replace(/-/g, '_')}`;
  const log = new RecordingLogger();
  const opts = { bucket, downAfterMs: 600, checkIntervalMs: 50, ttlMs: 1500, logger: log };

  beforeAll(async () => {
    agentNc = await connectBus({ servers: defaultNatsUrl });
    controlNc = await connectBus({ servers: defaultNatsUrl });
  });
  afterAll(async () => {
    await new Kvm(controlNc)
      .open(bucket)
      .then((kv) => kv.destroy())
      .catch(() => undefined);
    await agentNc?.close();
    await controlNc?.close();
  });

  it('marks a beating host up, a silent one down after downAfterMs, a deregistered one down at once', async () => {
    const liveness = new HostLiveness(controlNc, opts);
    const changes: HostLivenessChange[] = [];
    liveness.changes$.subscribe((c) => changes.push(c));
    await liveness.start();
    const h1 = uniqueHostId('beat');
    const h2 = uniqueHostId('bye');
    const p1 = new HeartbeatPublisher(agentNc, { hostId: h1, intervalMs: 100, bucket, logger: log });
    const p2 = new HeartbeatPublisher(agentNc, { hostId: h2, intervalMs: 100, bucket, logger: log });
    await Promise.all([p1.start(), p2.start()]);
    await waitFor(() => liveness.isUp(h1) && liveness.isUp(h2), 2000, 'both up');
    await sleep(800); // longer than downAfterMs: the beats keep them up
    expect(liveness.isUp(h1) && liveness.isUp(h2)).toBe(true);
    expect(p1.beats).toBeGreaterThanOrEqual(5);

    const deregisteredAt = Date.now();
    await p2.stop();
    await waitFor(() => !liveness.isUp(h2), 1000, 'h2 down');
    expect(Date.now() - deregisteredAt).toBeLessThan(500);
    expect(liveness.status(h2)).toMatchObject({ up: false, reason: 'deregistered' });

    const silentAt = Date.now();
    await p1.stop({ deregister: false }); // what a crash looks like
    await waitFor(() => !liveness.isUp(h1), 3000, 'h1 down');
    const detection = Date.now() - silentAt;
    expect(detection).toBeGreaterThanOrEqual(400);
    expect(detection).toBeLessThan(2 * opts.downAfterMs);
    expect(liveness.status(h1)).toMatchObject({ up: false, reason: 'silent' });

    const restarted = new HeartbeatPublisher(agentNc, { hostId: h1, intervalMs: 100, bucket, logger: log });
    await restarted.start();
    await waitFor(() => liveness.isUp(h1), 2000, 'h1 back');
    await restarted.stop();
    await waitFor(() => !liveness.isUp(h1), 1000, 'h1 deregistered');
    liveness.stop();
    const forHost = (h: string) => changes.filter((c) => c.hostId === h).map((c) => [c.up, c.reason]);
    expect(forHost(h1)).toEqual([
      [true, 'beat'],
      [false, 'silent'],
      [true, 'beat'],
      [false, 'deregistered'],
    ]);
    expect(forHost(h2)).toEqual([
      [true, 'beat'],
      [false, 'deregistered'],
    ]);
  });

  it('a restarted control plane finds the hosts in the bucket at start, without waiting for a beat', async () => {
    const h = uniqueHostId('persist');
    const p = new HeartbeatPublisher(agentNc, { hostId: h, intervalMs: 10_000, bucket, logger: log });
    await p.start();
    const first = new HostLiveness(controlNc, opts);
    await first.start();
    expect(first.isUp(h)).toBe(true);
    first.stop();

    const second = new HostLiveness(controlNc, opts);
    const changes: HostLivenessChange[] = [];
    second.changes$.subscribe((c) => changes.push(c));
    await second.start();
    expect(second.isUp(h)).toBe(true);
    expect(changes.find((c) => c.hostId === h)).toMatchObject({ up: true, reason: 'beat' });
    // The one beat ages out: down after downAfterMs even though no event came.
    await waitFor(() => !second.isUp(h), 2000, 'stale host down');
    expect(second.status(h)?.reason).toBe('silent');
    second.stop();

    // Later still, its key expired by the bucket TTL: a new control plane does not see it up.
    await sleep(1600);
    const third = new HostLiveness(controlNc, opts);
    await third.start();
    expect(third.isUp(h)).toBe(false);
    expect(third.status(h)).toBeUndefined(); // the key is gone, not merely old
    third.stop();
    await p.stop({ deregister: false });
  });

  it('refuses and logs a heartbeat with a forged sender or a bad shape (not counted as a beat)', async () => {
    const liveness = new HostLiveness(controlNc, opts);
    await liveness.start();
    const kv = await new Kvm(agentNc).open(bucket);
    const victim = uniqueHostId('victim');
    const before = log.records.length;
    await kv.put(
      victim,
      JSON.stringify({
        v: 2,
        kind: 'heartbeat',
        id: 'x1',
        sender: uniqueHostId('impostor'),
        sentAt: Date.now(),
        seq: 0,
        intervalMs: 100,
        startedAt: Date.now(),
      }),
    );
    await kv.put(victim, '{"v":2,"kind":"heartbeat"}');
    await waitFor(() => log.records.length - before === 2, 2000, 'two refusals');
    expect(log.codes().slice(before)).toEqual([BusErrorCode.SenderMismatch, BusErrorCode.MessageInvalid]);
    expect(liveness.isUp(victim)).toBe(false);
    expect(liveness.status(victim)).toBeUndefined();
    liveness.stop();
  });
});
