import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { type NatsTestServer, startNatsServer } from '@nova-lfs/bus-nats/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditCluster,
  Cluster,
  type ControlPlane,
  call,
  clusterAvailable,
  create,
  createdId,
  deleteAll,
  expectConsistent,
  instancesInUse,
  settled,
  show,
  waitFor,
} from './cluster.test-helper.js';

/**
 * Issue 13: agent discovery and the automatic evacuate policy. A control plane started without
 * `--agent-host` finds the agents heartbeating in the hosts bucket (at start and later), and with
 * `--evacuate-after-ms` rebuilds the instances of a host down that long on another host; the
 * agent that comes back destroys its stale copy. A test-owned nats-server keeps the bucket to
 * this test's agents (the shared one holds every other test's hosts).
 */
const natsBinary = (() => {
  try {
    execFileSync('nats-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!natsBinary) {
  if (process.env.CI === 'true') throw new Error('CI=true and nats-server is not installed');
  console.warn('skipping the discovery test: nats-server is not installed');
}

const HOST_DOWN_AFTER_MS = 1000;
const EVACUATE_AFTER_MS = 1500;

const hypervisors = async (cp: ControlPlane): Promise<Map<string, string>> => {
  const r = await call(cp, 'GET', '/v2.1/os-hypervisors/detail');
  expect(r.status).toBe(200);
  const { hypervisors: list } = (await r.json()) as {
    hypervisors: { hypervisor_hostname: string; state: string }[];
  };
  return new Map(list.map((h) => [h.hypervisor_hostname, h.state]));
};

describe.skipIf(!clusterAvailable || !natsBinary)('agent discovery and automatic evacuation', () => {
  let nats: NatsTestServer;
  let cluster: Cluster;
  let cp: ControlPlane;

  beforeAll(async () => {
    nats = await startNatsServer();
    const tag = randomUUID().slice(0, 6);
    cluster = new Cluster(
      ['a', 'b', 'c'].map((n) => ({ hostId: `dsc${n}-${tag}` })),
      {
        natsUrl: nats.url,
        agentHostFlags: false,
        hostDownAfterMs: HOST_DOWN_AFTER_MS,
        planeArgs: ['--evacuate-after-ms', String(EVACUATE_AFTER_MS), '--reconcile-interval-ms', '500'],
      },
    );
    const [a, b] = cluster.hostIds as [string, string, string];
    // the control plane first: it creates the hosts bucket with its TTL (an agent started first
    // would create it without one, or wait for it with per-agent credentials)
    cp = await cluster.startPlane('A');
    await cluster.uploadImage(cp);
    await cluster.startAgent(a);
    await cluster.startAgent(b);
  }, 120_000);

  afterAll(async () => {
    await cluster?.close();
    await nats?.dispose();
  }, 60_000);

  it('finds the heartbeating agents without --agent-host, now and later', async () => {
    const [a, b, c] = cluster.hostIds as [string, string, string];
    // the agents started after the control plane: found once they beat
    await waitFor('hosts a and b to be discovered', async () => {
      const hv = await hypervisors(cp);
      return hv.get(a) === 'up' && hv.get(b) === 'up' ? true : undefined;
    });
    expect((await hypervisors(cp)).size).toBe(2);
    await cluster.startAgent(c);
    await waitFor(`host ${c} to be discovered`, async () =>
      (await hypervisors(cp)).get(c) === 'up' ? true : undefined,
    );
    expect((await hypervisors(cp)).size).toBe(3);
  }, 60_000);

  it('evacuates a host down past --evacuate-after-ms; its returning agent destroys the stale copy; nothing leaks', async () => {
    const ids = await Promise.all(
      [0, 1, 2].map(async (i) => createdId(await create(cp, cluster.imageId, `ev-${i}`))),
    );
    const placed = await Promise.all(ids.map((id) => settled(cp, id)));
    // the fault says why, should a build fail here (seen once under CI load, not reproduced)
    for (const s of placed) expect(s.status, JSON.stringify(s.fault ?? null)).toBe('ACTIVE');
    const victim = placed[0]!['OS-EXT-SRV-ATTR:host']!;
    const onVictim = placed.filter((s) => s['OS-EXT-SRV-ATTR:host'] === victim).map((s) => s.id);
    const killedAt = Date.now();
    await cluster.agents.get(victim)!.kill();
    for (const id of onVictim)
      await waitFor(
        `server ${id} to be evacuated`,
        async () => {
          const s = await show(cp, id);
          return s !== 'gone' &&
            s.status === 'ACTIVE' &&
            s['OS-EXT-STS:task_state'] === null &&
            s['OS-EXT-SRV-ATTR:host'] !== victim
            ? true
            : undefined;
        },
        30_000,
      );
    const took = Date.now() - killedAt;
    console.log(
      `evacuate policy: ${onVictim.length} instance(s) of ${victim} rebuilt elsewhere ${took} ms after its agent was killed (down after ${HOST_DOWN_AFTER_MS} + evacuate after ${EVACUATE_AFTER_MS})`,
    );
    expect(took).toBeGreaterThanOrEqual(EVACUATE_AFTER_MS);
    for (const id of onVictim) {
      const s = await show(cp, id);
      expect(s !== 'gone' && cluster.guestsOf(s['OS-EXT-SRV-ATTR:host']!)).toContain(id);
    }
    // the victim's agent comes back: its copies of the evacuated instances go
    expect(cluster.guestsOf(victim)).toEqual(expect.arrayContaining(onVictim));
    await cluster.startAgent(victim);
    await waitFor('the stale copies to be destroyed', async () =>
      cluster.guestsOf(victim).some((g) => onVictim.includes(g)) ? undefined : true,
    );
    expectConsistent(await auditCluster(cluster.schema));
    expect(await instancesInUse(cp)).toBe(ids.length);
    await deleteAll(
      ids,
      () => cp,
      () => cp,
    );
    for (const h of cluster.hostIds) expect(cluster.guestsOf(h)).toEqual([]);
    const end = await auditCluster(cluster.schema);
    expectConsistent(end);
    expect(end.claims).toBe(0);
  }, 120_000);
});
