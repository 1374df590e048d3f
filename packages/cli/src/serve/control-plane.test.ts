import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditCluster,
  clusterAvailable as available,
  Cluster,
  type ControlPlane,
  call,
  create,
  deleteAll,
  expectConsistent,
  expectQuotaAdmission,
  instancesInUse,
  listAll,
  settled,
  show,
  waitFor,
} from './cluster.test-helper.js';
import { parseServeArgs, serveHelp, UsageError } from './serve-options.js';

/**
 * The distributed control plane of issue 13, first cut: two `serve --store postgres --bus nats`
 * control planes (in this process) on one PostgreSQL schema, three fake agents as child
 * processes, everything through the two REST APIs.
 */

/** Each fake host fits two m1.tiny (1 vCPU): 3 hosts, 6 instances. */
const HOST_VCPUS = 2;

/** A PostgreSQL-backed embedded `serve` command line with `--stale-reservation-ms ms`. */
const withStaleReservation = (ms: string): string[] => [
  '--store',
  'postgres',
  '--pg-url',
  'postgres://x',
  '--fake-hosts',
  '1',
  '--stale-reservation-ms',
  ms,
];

describe('nova-lfs serve --bus nats options', () => {
  it('documents them in --help', () => {
    for (const flag of [
      '--bus nats',
      '--agent-host',
      '--nats-url',
      '--nats-user',
      '--nats-password',
      '--host-down-after-ms',
      '--evacuate-after-ms',
      '--reconcile-interval-ms',
      '--host-lease-ttl-ms',
      '--stale-task-grace-ms',
      '--stale-reservation-ms',
      '--spawn-timeout-ms',
    ])
      expect(serveHelp).toContain(flag);
  });

  it('reads them, with the NATS URL and password from the environment', () => {
    const options = parseServeArgs(
      [
        '--store',
        'postgres',
        '--pg-url',
        'postgres://x',
        '--bus',
        'nats',
        '--agent-host',
        'h1',
        '--agent-host',
        'h2',
      ],
      { NOVA_LFS_NATS_URL: 'nats://10.0.0.1:4222', NOVA_LFS_NATS_PASSWORD: 'secret' },
    );
    expect(options).toMatchObject({
      bus: 'nats',
      agentHosts: ['h1', 'h2'],
      natsUrl: 'nats://10.0.0.1:4222',
      natsPassword: 'secret',
      hostDownAfterMs: 30_000,
      evacuateAfterMs: 0,
      dockerHosts: [],
      fakeHosts: 0,
    });
    // the embedded default is unchanged: no bus, no agent hosts, the engine's own tuning
    expect(parseServeArgs(['--fake-hosts', '1'], {})).toMatchObject({ bus: 'none', agentHosts: [] });
    expect(parseServeArgs(['--fake-hosts', '1'], {})).not.toHaveProperty('reconcileIntervalMs');
    expect(parseServeArgs(['--fake-hosts', '1'], {})).not.toHaveProperty('staleReservationMs');
    expect(parseServeArgs(withStaleReservation('5000'), {})).toMatchObject({ staleReservationMs: 5000 });
  });

  it('refuses bad combinations naming the option', () => {
    const bad: [string[], string][] = [
      [['--bus', 'kafka', '--agent-host', 'h1'], '--bus'],
      [['--fake-hosts', '1', '--evacuate-after-ms', '1000'], '--evacuate-after-ms: needs --bus nats'],
      [['--bus', 'nats', '--evacuate-after-ms', '-1'], '--evacuate-after-ms'],
      [['--agent-host', 'h1', '--fake-hosts', '1'], '--agent-host: needs --bus nats'],
      [
        ['--bus', 'nats', '--agent-host', 'h1', '--fake-hosts', '1'],
        '--fake-hosts: with --bus nats every host is an agent',
      ],
      [
        ['--bus', 'nats', '--agent-host', 'h1', '--docker-host', 'd1'],
        '--fake-hosts: with --bus nats every host is an agent',
      ],
      [['--bus', 'nats', '--agent-host', 'a.b'], '--agent-host'],
      [['--bus', 'nats', '--agent-host', 'h1', '--agent-host', 'h1'], '--agent-host'],
      [['--bus', 'nats', '--agent-host', 'h1', '--host-down-after-ms', '5'], '--host-down-after-ms'],
      [['--fake-hosts', '1', '--spawn-timeout-ms', 'soon'], '--spawn-timeout-ms'],
      [['--fake-hosts', '1', '--reconcile-interval-ms', '-1'], '--reconcile-interval-ms'],
      [
        ['--fake-hosts', '1', '--stale-reservation-ms', '5000'],
        '--stale-reservation-ms: needs --store postgres',
      ],
      [withStaleReservation('999'), '--stale-reservation-ms'],
      [withStaleReservation('soon'), '--stale-reservation-ms'],
    ];
    for (const [args, flag] of bad) {
      expect(() => parseServeArgs(args, {}), args.join(' ')).toThrow(UsageError);
      expect(() => parseServeArgs(args, {}), args.join(' ')).toThrow(flag);
    }
  });
});

describe.skipIf(!available)(
  'two control planes (serve --store postgres --bus nats) with three agent hosts',
  () => {
    const fakeArgs = ['--fake-vcpus', String(HOST_VCPUS), '--fake-ram-mb', '8192'];
    const cluster = new Cluster(
      ['a', 'b', 'c'].map((n) => ({ hostId: `cp${n}-${randomUUID().slice(0, 8)}`, extraArgs: fakeArgs })),
    );
    const { hostIds } = cluster;
    let a: ControlPlane;
    let b: ControlPlane;

    beforeAll(async () => {
      await cluster.startAgents();
      // the first start creates the schemas and seeds flavors; the second joins them
      a = await cluster.startPlane('A');
      b = await cluster.startPlane('B');
      await cluster.uploadImage(a);
    }, 90_000);

    afterAll(() => cluster.close(), 60_000);

    it('creates from both control planes without over-committing a host, reboots and deletes from the other one', async () => {
      const capacity = hostIds.length * HOST_VCPUS;
      const requested = capacity + 2;
      // all at once, alternating between the two control planes
      const by = (i: number) => (i % 2 === 0 ? a : b);
      const other = (i: number) => by(i + 1);
      const responses = await Promise.all(
        Array.from({ length: requested }, (_, i) => create(by(i), cluster.imageId, `spread-${i}`)),
      );
      for (const r of responses) expect(r.status).toBe(202);
      const ids = await Promise.all(
        responses.map(async (r) => ((await r.json()) as { server: { id: string } }).server.id),
      );
      const final = await Promise.all(ids.map((id, i) => settled(other(i), id)));
      const active = final.filter((s) => s.status === 'ACTIVE');
      // the scheduler's claims are shared through PostgreSQL: exactly the capacity fits
      expect(active).toHaveLength(capacity);
      expect(final.filter((s) => s.status === 'ERROR')).toHaveLength(requested - capacity);
      const perHost = new Map<string, number>();
      for (const s of active) {
        const host = s['OS-EXT-SRV-ATTR:host'];
        expect(hostIds).toContain(host);
        perHost.set(host!, (perHost.get(host!) ?? 0) + 1);
      }
      for (const h of hostIds) {
        // 1 vCPU per m1.tiny: at most HOST_VCPUS per host, as placed and as the agent runs them
        expect(perHost.get(h) ?? 0).toBeLessThanOrEqual(HOST_VCPUS);
        expect(cluster.guestsOf(h).sort()).toEqual(
          active
            .filter((s) => s['OS-EXT-SRV-ATTR:host'] === h)
            .map((s) => s.id)
            .sort(),
        );
      }

      // reboot each ACTIVE one from the control plane that did not create it
      const activeIdx = ids
        .map((id, i) => [id, i] as const)
        .filter(([id]) => active.some((s) => s.id === id));
      const reboots = await Promise.all(
        activeIdx.map(([id, i]) =>
          call(other(i), 'POST', `/v2.1/servers/${id}/action`, { reboot: { type: 'HARD' } }),
        ),
      );
      for (const r of reboots) expect(r.status).toBe(202);
      for (const [id, i] of activeIdx) expect((await settled(by(i), id)).status).toBe('ACTIVE');

      // delete all (ERROR ones too) from the other control plane
      await deleteAll(ids, other, by);
      expect(await listAll(a)).toEqual([]);
      expect(await listAll(b)).toEqual([]);
      for (const h of hostIds) expect(cluster.guestsOf(h)).toEqual([]);
      const audit = await auditCluster(cluster.schema);
      expectConsistent(audit);
      expect(audit.claims).toBe(0);
    }, 120_000);

    it('admits exactly the instances quota across both control planes', async () => {
      await expectQuotaAdmission(cluster, a, b, 4, 2);
    }, 120_000);
  },
);

describe.skipIf(!available)('a control plane killed mid-build: the other one takes its task over', () => {
  /** Every call of the agent's fake driver takes this long: a build is in flight for a while. */
  const LATENCY_MS = 2000;
  const cluster = new Cluster(
    [{ hostId: `cpk-${randomUUID().slice(0, 8)}`, extraArgs: ['--fake-latency-ms', String(LATENCY_MS)] }],
    {
      planeArgs: [
        '--reconcile-interval-ms',
        '300',
        '--host-lease-ttl-ms',
        '1500',
        '--stale-task-grace-ms',
        '500',
        '--spawn-timeout-ms',
        '5000',
      ],
    },
  );
  const [hostId] = cluster.hostIds as [string];
  let doomed: ControlPlane;
  let survivor: ControlPlane;

  beforeAll(async () => {
    await cluster.startAgents();
    // the child starts first and so holds the host's lease
    doomed = await cluster.startPlane('K', 'child');
    survivor = await cluster.startPlane('S');
    await cluster.uploadImage(survivor);
  }, 120_000);

  afterAll(() => cluster.close(), 60_000);

  it('SIGKILL of the building control plane: the survivor finishes the build once the lease and the task deadline expire, nothing leaks', async () => {
    const r = await create(doomed, cluster.imageId, 'orphaned-build');
    expect(r.status).toBe(202);
    const { id } = ((await r.json()) as { server: { id: string } }).server;
    // the build is on its way to the agent (the fake spawn takes LATENCY_MS)
    await waitFor('the build to be spawning', async () => {
      const s = await show(survivor, id);
      return s !== 'gone' && s.status === 'BUILD' && s['OS-EXT-STS:task_state'] === 'spawning'
        ? true
        : undefined;
    });
    const killedAt = Date.now();
    await doomed.kill!();
    // the killed process's task stays BUILD for a while: the survivor does not touch a live one
    const early = await show(survivor, id);
    expect(early !== 'gone' && early.status).toBe('BUILD');
    // the agent finished the spawn; the survivor, once it holds the host's lease and the task is
    // past its spawn deadline plus the grace, finds the guest running with its claim: ACTIVE
    const healed = await settled(survivor, id, 30_000);
    const tookMs = Date.now() - killedAt;
    expect(healed.status).toBe('ACTIVE');
    expect(healed['OS-EXT-SRV-ATTR:host']).toBe(hostId);
    expect(tookMs).toBeLessThan(5000 + 500 + 1500 + 3 * LATENCY_MS + 5000);
    expect(cluster.guestsOf(hostId)).toEqual([id]);
    expect(await instancesInUse(survivor)).toBe(1);

    await deleteAll(
      [id],
      () => survivor,
      () => survivor,
    );
    expect(await listAll(survivor)).toEqual([]);
    expect(cluster.guestsOf(hostId)).toEqual([]);
    expect(await instancesInUse(survivor)).toBe(0);
    const audit = await auditCluster(cluster.schema);
    expectConsistent(audit);
    expect(audit.claims).toBe(0);
  }, 120_000);
});
