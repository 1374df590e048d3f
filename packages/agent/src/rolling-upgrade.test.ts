import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  agentInboxPrefix,
  connectBus,
  decodeEnvelope,
  encodeEnvelope,
  type RequestEnvelope,
  rpcSubject,
} from '@nova-lfs/bus-nats';
import {
  type ComputeEngine,
  createCompute,
  DriverError,
  type Instance,
  LocalImageService,
} from '@nova-lfs/core';
import { supportsLiveMigration } from '@nova-lfs/core/ports';
import { FakeDriver, FirstFitScheduler } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  available,
  type ControlPlaneBus,
  controlPlaneBus,
  natsUrl,
  tempDir,
  uniqueHostId,
} from './agent-env.test-helper.js';
import { AgentService } from './agent-service.js';
import { capabilityFlagsV1, driverRpc } from './driver-protocol.js';
import { RemoteDriver } from './remote-driver.js';

/**
 * Rolling upgrade (issue 13), pinned in both directions:
 * - an agent of the previous release (v1 envelopes, errors with code and message only, a
 *   capabilities record without the flags added since: `coldMigration`, `rescue`) against the
 *   current `RemoteDriver` and engine: it is connected, the missing flags read as off, and
 *   creates, reboots and deletes go through it;
 * - a control plane of the previous release reading the current agent: v1 requests get v1
 *   replies whose results pass the previous release's schemas (its capabilities schema is
 *   strict: exactly the v1 flags).
 */

/** The previous release's capabilities schema: exactly the v1 flags (strict, no defaults). */
const capabilitiesV1Schema = z.strictObject(
  Object.fromEntries(capabilityFlagsV1.map((k) => [k, z.boolean()])),
);
/** The previous release's v1 reply, pinned (code and message only in an error). */
const replyV1Schema = z.strictObject({
  v: z.literal(1),
  kind: z.literal('reply'),
  id: z.string(),
  sender: z.string(),
  sentAt: z.number(),
  inReplyTo: z.string(),
  outcome: z.union([
    z.strictObject({ ok: z.literal(true), result: z.unknown() }),
    z.strictObject({
      ok: z.literal(false),
      error: z.strictObject({ code: z.string(), message: z.string() }),
    }),
  ]),
});

/**
 * An agent of the previous release, on the wire: it answers every request with a v1 reply,
 * reports v1 capabilities and delegates the driver calls it knows to a FakeDriver.
 */
class PreviousReleaseAgent {
  readonly fake: FakeDriver;
  private sub: Subscription | undefined;
  readonly bootId = randomUUID();
  readonly seen: RequestEnvelope[] = [];

  constructor(
    private readonly nc: NatsConnection,
    readonly hostId: string,
    dir: string,
  ) {
    this.fake = new FakeDriver({ hostname: hostId, statePath: join(dir, 'old-agent.json') });
  }

  start(): Promise<void> {
    this.sub = this.nc.subscribe(`nova.agent.${this.hostId}.rpc.>`, {
      callback: (_e, msg) => void this.serve(msg),
    });
    return this.nc.flush();
  }

  stop(): void {
    this.sub?.unsubscribe();
  }

  private async serve(msg: Msg): Promise<void> {
    const request = decodeEnvelope(msg.subject, msg.data, 'request') as RequestEnvelope;
    this.seen.push(request);
    const p = request.payload as { instance: Instance; kind: 'soft' | 'hard' };
    const d = this.fake;
    let outcome: { ok: true; result: unknown } | { ok: false; error: { code: string; message: string } };
    try {
      const result = await (async (): Promise<unknown> => {
        switch (request.method) {
          case 'driver.describe':
            return {
              hostId: this.hostId,
              kind: d.kind,
              // the capabilities record of its time: no coldMigration, no rescue
              capabilities: Object.fromEntries(capabilityFlagsV1.map((k) => [k, d.capabilities[k]])),
              needsImageBytes: false,
              bootId: this.bootId,
              startedAt: Date.now(),
              protocolRevision: 1,
            };
          case 'driver.hostReport':
            return d.getHostReport();
          case 'driver.listInstances':
            return { instances: await d.listInstances() };
          case 'driver.powerState':
            return { powerState: await d.getPowerState(p.instance) };
          case 'driver.spawn':
            await d.spawn({ ...(p as object), images: {} as never } as never);
            return {};
          case 'driver.reboot':
            await d.reboot(p.instance, p.kind);
            return {};
          case 'driver.destroy':
            await d.destroy(p.instance);
            return {};
          default:
            throw new Error(`unknown method ${request.method}`);
        }
      })();
      outcome = { ok: true, result };
    } catch (e) {
      outcome = { ok: false, error: { code: 'NLFS_DRIVER_ERROR', message: (e as Error).message } };
    }
    msg.respond(
      encodeEnvelope(
        {
          v: 2,
          kind: 'reply',
          id: randomUUID(),
          sender: this.hostId,
          sentAt: Date.now(),
          inReplyTo: request.id,
          outcome: outcome as never,
        },
        1,
      ),
    );
  }
}

describe.skipIf(!available)('rolling upgrade: previous-release agents and control planes', () => {
  let bus: ControlPlaneBus;
  let oldAgentNc: NatsConnection;
  let old: PreviousReleaseAgent;
  let driver: RemoteDriver;
  let engine: ComputeEngine;
  const dir = tempDir();

  beforeAll(async () => {
    bus = await controlPlaneBus();
    const hostId = uniqueHostId('old');
    oldAgentNc = await connectBus({ servers: natsUrl, inboxPrefix: agentInboxPrefix(hostId) });
    old = new PreviousReleaseAgent(oldAgentNc, hostId, dir);
    await old.start();
    driver = await RemoteDriver.connect({
      hostId,
      client: bus.client,
      subscriber: bus.subscriber,
      imageServer: bus.imageServer,
    });
    const images = new LocalImageService(join(dir, 'images'));
    await images.import(
      { id: 'img', name: 'img', diskFormat: 'raw', containerFormat: 'bare' },
      { kind: 'bytes', bytes: new Uint8Array([1, 2, 3]) },
    );
    engine = await createCompute({
      storage: 'memory',
      images,
      scheduler: ({ claims }) => new FirstFitScheduler(claims),
      flavors: [{ id: 'f1', vcpus: 1, ramMb: 64, diskGb: 0 }],
      hosts: [{ id: hostId, driver }],
      engine: { reconcileIntervalMs: 0 },
    });
  }, 60_000);

  afterAll(async () => {
    await engine?.close();
    await driver?.close();
    old?.stop();
    await oldAgentNc?.close();
    await bus?.close();
  });

  it('a previous-release agent (v1 replies, capabilities without coldMigration and rescue) works with the current control plane', async () => {
    // the flags it does not know read as off; the others as it sent them, except the move and
    // change ports, which a revision-1 agent never served (its FAKE driver can live-migrate)
    expect(driver.capabilities.coldMigration).toBe(false);
    expect(driver.capabilities.rescue).toBe(false);
    expect(old.fake.capabilities.liveMigration).toBe(true);
    expect(supportsLiveMigration(driver)).toBe(false);
    const unserved = ['liveMigration', 'volumeAttach', 'interfaceAttach'] as const;
    const served = capabilityFlagsV1.filter((k) => !(unserved as readonly string[]).includes(k));
    for (const k of served) expect(driver.capabilities[k]).toBe(old.fake.capabilities[k]);
    for (const k of unserved) expect(driver.capabilities[k], k).toBe(false);
    expect(old.fake.capabilities.interfaceAttach).toBe(true);
    const [vm] = await engine.create({
      projectId: 'p1',
      userId: 'u1',
      flavorId: 'f1',
      imageId: 'img',
      name: 'old',
    });
    expect(vm).toMatchObject({ vmState: 'active', hostId: old.hostId });
    expect((await old.fake.listInstances()).map((g) => g.instanceId)).toEqual([vm!.id]);
    expect((await engine.reboot(vm!.id, 'hard')).vmState).toBe('active');
    await engine.delete(vm!.id);
    expect(await old.fake.listInstances()).toEqual([]);
    // every reply it sent was v1; a v1 error (no details) arrives as a DriverError
    expect(old.seen.length).toBeGreaterThan(3);
    const e = await driver
      .powerOn({ ...vm!, hostId: old.hostId })
      .then(() => undefined)
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DriverError);
  });

  it('a previous-release control plane reads the current agent: v1 replies passing its strict v1 schemas', async () => {
    const hostId = uniqueHostId('new');
    const nc = await connectBus({ servers: natsUrl, inboxPrefix: agentInboxPrefix(hostId) });
    const agent = new AgentService(nc, {
      hostId,
      driver: new FakeDriver({ hostname: hostId }),
      needsImageBytes: false,
      stateDir: join(dir, 'new-agent'),
      heartbeatIntervalMs: 60_000,
    });
    await agent.start();
    try {
      const ask = async (method: string) => {
        const req = {
          v: 1,
          kind: 'request',
          id: randomUUID(),
          sender: 'old-control',
          sentAt: Date.now(),
          method,
          deadline: Date.now() + 5000,
          payload: {},
        };
        const msg = await bus.nc.request(rpcSubject(hostId, method), JSON.stringify(req), { timeout: 5000 });
        const reply = replyV1Schema.parse(JSON.parse(new TextDecoder().decode(msg.data)));
        expect(reply.inReplyTo).toBe(req.id);
        if (!reply.outcome.ok) throw new Error(reply.outcome.error.message);
        return reply.outcome.result as Record<string, unknown>;
      };
      const described = await ask(driverRpc.describe.name);
      // exactly the v1 flags: the previous release's strict schema accepts it
      expect(capabilitiesV1Schema.safeParse(described.capabilities).success).toBe(true);
      expect(Object.keys(described.capabilities as object).sort()).toEqual([...capabilityFlagsV1].sort());
      expect(described.hostId).toBe(hostId);
      const report = await ask(driverRpc.hostReport.name);
      expect(report.hypervisorType).toBe('fake');
      expect(await ask(driverRpc.listInstances.name)).toEqual({ instances: [] });
      // the current control plane still reads every flag from the same agent
      const current = await RemoteDriver.connect({
        hostId,
        client: bus.client,
        subscriber: bus.subscriber,
        imageServer: bus.imageServer,
      });
      expect(Object.keys(current.capabilities)).toEqual(expect.arrayContaining(['coldMigration', 'rescue']));
      await current.close();
    } finally {
      await agent.stop();
      await nc.close();
    }
  });
});
