import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentProcess, startAgentProcess } from '@nova-lfs/agent/testing';
import { defaultNatsUrl, natsAvailable } from '@nova-lfs/bus-nats/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runServe } from './serve-command.js';
import { parseServeArgs, serveHelp, UsageError } from './serve-options.js';
import { freePort, startServe } from './serve-process.test-helper.js';

/**
 * The distributed control plane of issue 13, first cut: two `serve --store postgres --bus nats`
 * control planes (in this process) on one PostgreSQL schema, three fake agents as child
 * processes, everything through the two REST APIs.
 */
const pgUrl = process.env.NOVA_LFS_PG_URL ?? 'postgres://nova:nova@127.0.0.1:5432/nova_test';

async function pgAvailable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

const available = (await natsAvailable(defaultNatsUrl)) && (await pgAvailable());
if (!available) {
  if (process.env.CI === 'true') throw new Error('CI=true and nats-server or PostgreSQL is not reachable');
  console.warn('skipping control-plane tests: nats-server or PostgreSQL is not reachable');
}

const PASSWORD = 'control-plane-pw-1';
/** Each fake host fits two m1.tiny (1 vCPU): 3 hosts, 6 instances. */
const HOST_VCPUS = 2;
const TINY = '1';

interface ControlPlane {
  readonly name: string;
  readonly url: string;
  readonly token: string;
  readonly projectId: string;
  stop(): Promise<void>;
  /** SIGKILL, for a control plane run as a child process. */
  kill?(): Promise<void>;
}

interface ServerView {
  id: string;
  status: string;
  'OS-EXT-STS:task_state': string | null;
  'OS-EXT-SRV-ATTR:host'?: string | null;
  flavor: { vcpus?: number; original_name?: string; id?: string };
}

/** A REST call with the control plane's token. */
function call(cp: ControlPlane, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${cp.url}${path}`, {
    method,
    headers: {
      'x-auth-token': cp.token,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      'x-openstack-nova-api-version': '2.37',
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** One test's cluster: a fresh PostgreSQL schema, a shared data dir, agent child processes. */
class Cluster {
  readonly schema = `nlfs_cp_${randomUUID().slice(0, 8)}`;
  readonly dataDir = mkdtempSync(join(tmpdir(), 'nlfs-cp-'));
  readonly agents: AgentProcess[] = [];
  readonly planes: ControlPlane[] = [];
  imageId = '';

  constructor(
    readonly hostIds: readonly string[],
    private readonly planeArgs: readonly string[] = [],
  ) {}

  async startAgents(extraArgs: readonly string[]): Promise<void> {
    for (const hostId of this.hostIds)
      this.agents.push(
        await startAgentProcess({
          hostId,
          natsUrl: defaultNatsUrl,
          stateDir: join(this.dataDir, 'agents', hostId),
          heartbeatMs: 200,
          extraArgs,
        }),
      );
  }

  guestsOf(hostId: string): string[] {
    const file = join(this.dataDir, 'agents', hostId, 'fake-guests.json');
    if (!existsSync(file)) return [];
    return (JSON.parse(readFileSync(file, 'utf8')) as [string, unknown][]).map(([id]) => id);
  }

  /** `serve --store postgres --bus nats` on this cluster: in this process, or as a child process. */
  async startPlane(name: string, how: 'in-process' | 'child' = 'in-process'): Promise<ControlPlane> {
    const port = await freePort();
    const args = [
      // the control planes run on this machine and share the data dir (the image cache the
      // agents read by path, and the admin password)
      '--data-dir',
      this.dataDir,
      '--admin-password',
      PASSWORD,
      '--store',
      'postgres',
      '--pg-url',
      pgUrl,
      '--pg-schema',
      this.schema,
      '--bus',
      'nats',
      '--nats-url',
      defaultNatsUrl,
      ...this.hostIds.flatMap((h) => ['--agent-host', h]),
      '--host-down-after-ms',
      '2000',
      '--log-level',
      how === 'child' ? 'warn' : 'silent',
      // the test's own burst of concurrent creates must not meet the per-caller limit
      '--rate-limit',
      '0',
      ...this.planeArgs,
    ];
    let url: string;
    let stop: () => Promise<void>;
    let kill: (() => Promise<void>) | undefined;
    if (how === 'child') {
      const child = await startServe(args, port);
      url = child.url;
      stop = async () => void (await child.stop());
      kill = () => child.kill();
    } else {
      const options = parseServeArgs(['--listen', `127.0.0.1:${port}`, ...args], {});
      if (options === 'help') throw new Error('unexpected help');
      const service = await runServe(options, { print: () => undefined });
      url = service.url;
      stop = () => service.stop();
    }
    const issued = await fetch(`${url}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'admin', domain: { id: 'default' }, password: PASSWORD } },
          },
          scope: { project: { name: 'admin', domain: { id: 'default' } } },
        },
      }),
    });
    expect(issued.status).toBe(201);
    const body = (await issued.json()) as { token: { project: { id: string } } };
    const plane: ControlPlane = {
      name,
      url,
      token: issued.headers.get('x-subject-token')!,
      projectId: body.token.project.id,
      stop,
      ...(kill ? { kill } : {}),
    };
    this.planes.push(plane);
    return plane;
  }

  /** Uploads a small raw image through `cp`'s image API. */
  async uploadImage(cp: ControlPlane): Promise<void> {
    const created = await call(cp, 'POST', '/image/v2/images', {
      name: 'cp-image',
      disk_format: 'raw',
      container_format: 'bare',
      visibility: 'public',
    });
    expect(created.status).toBe(201);
    this.imageId = ((await created.json()) as { id: string }).id;
    const uploaded = await fetch(`${cp.url}/image/v2/images/${this.imageId}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': cp.token, 'content-type': 'application/octet-stream' },
      body: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
    });
    expect(uploaded.status).toBe(204);
  }

  /** Stops everything, drops the schemas, removes the data dir. */
  async close(): Promise<void> {
    for (const p of this.planes) await p.stop().catch(() => undefined);
    for (const a of this.agents) await a.stop();
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    try {
      await c.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`);
      await c.query(`DROP SCHEMA IF EXISTS "${this.schema}_api" CASCADE`);
    } finally {
      await c.end();
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

const show = async (cp: ControlPlane, id: string): Promise<ServerView | 'gone'> => {
  const r = await call(cp, 'GET', `/v2.1/servers/${id}`);
  if (r.status === 404) return 'gone';
  expect(r.status).toBe(200);
  return ((await r.json()) as { server: ServerView }).server;
};

const settled = (cp: ControlPlane, id: string, timeoutMs = 30_000) =>
  waitFor(
    `server ${id} to settle`,
    async () => {
      const s = await show(cp, id);
      if (s === 'gone') throw new Error(`server ${id} vanished`);
      return (s.status === 'ACTIVE' || s.status === 'ERROR') && s['OS-EXT-STS:task_state'] === null
        ? s
        : undefined;
    },
    timeoutMs,
  );

const create = (cp: ControlPlane, imageId: string, name: string) =>
  call(cp, 'POST', '/v2.1/servers', {
    server: { name, imageRef: imageId, flavorRef: TINY, networks: 'none' },
  });

/** Deletes every server, server i through `by(i)`, and waits until both planes no longer show it. */
const deleteAll = async (
  ids: string[],
  by: (i: number) => ControlPlane,
  other: (i: number) => ControlPlane,
) => {
  const deleted = await Promise.all(ids.map((id, i) => call(by(i), 'DELETE', `/v2.1/servers/${id}`)));
  for (const r of deleted) expect(r.status).toBe(204);
  for (const [i, id] of ids.entries()) {
    await waitFor(`server ${id} to be deleted`, async () =>
      (await show(by(i), id)) === 'gone' ? true : undefined,
    );
    expect(await show(other(i), id)).toBe('gone');
  }
};

const listAll = async (cp: ControlPlane): Promise<ServerView[]> => {
  const r = await call(cp, 'GET', '/v2.1/servers/detail?all_tenants=1');
  expect(r.status).toBe(200);
  return ((await r.json()) as { servers: ServerView[] }).servers;
};

const instancesInUse = async (cp: ControlPlane): Promise<number> => {
  const r = await call(cp, 'GET', `/v2.1/os-quota-sets/${cp.projectId}/detail`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { quota_set: { instances: { in_use: number } } }).quota_set.instances.in_use;
};

describe('nova-lfs serve --bus nats options', () => {
  it('documents them in --help', () => {
    for (const flag of [
      '--bus nats',
      '--agent-host',
      '--nats-url',
      '--nats-user',
      '--nats-password',
      '--host-down-after-ms',
      '--reconcile-interval-ms',
      '--host-lease-ttl-ms',
      '--stale-task-grace-ms',
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
      dockerHosts: [],
      fakeHosts: 0,
    });
    // the embedded default is unchanged: no bus, no agent hosts, the engine's own tuning
    expect(parseServeArgs(['--fake-hosts', '1'], {})).toMatchObject({ bus: 'none', agentHosts: [] });
    expect(parseServeArgs(['--fake-hosts', '1'], {})).not.toHaveProperty('reconcileIntervalMs');
  });

  it('refuses bad combinations naming the option', () => {
    const bad: [string[], string][] = [
      [['--bus', 'kafka', '--agent-host', 'h1'], '--bus'],
      [['--bus', 'nats'], '--agent-host'],
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
    const cluster = new Cluster(['a', 'b', 'c'].map((n) => `cp${n}-${randomUUID().slice(0, 8)}`));
    const { hostIds } = cluster;
    let a: ControlPlane;
    let b: ControlPlane;

    beforeAll(async () => {
      await cluster.startAgents(['--fake-vcpus', String(HOST_VCPUS), '--fake-ram-mb', '8192']);
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
    }, 120_000);

    it('admits exactly the instances quota across both control planes', async () => {
      const quota = 4;
      const set = await call(a, 'PUT', `/v2.1/os-quota-sets/${a.projectId}`, {
        quota_set: { instances: quota },
      });
      expect(set.status).toBe(200);
      const by = (i: number) => (i % 2 === 0 ? b : a);
      const responses = await Promise.all(
        Array.from({ length: quota + 2 }, (_, i) => create(by(i), cluster.imageId, `quota-${i}`)),
      );
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 202)).toHaveLength(quota);
      expect(statuses.filter((s) => s === 403)).toHaveLength(2);
      const ids: string[] = [];
      const creators: ControlPlane[] = [];
      for (const [i, r] of responses.entries())
        if (r.status === 202) {
          ids.push(((await r.json()) as { server: { id: string } }).server.id);
          creators.push(by(i));
        } else await r.body?.cancel();
      for (const id of ids) expect((await settled(a, id)).status).toBe('ACTIVE');
      expect(await instancesInUse(b)).toBe(quota);
      await deleteAll(
        ids,
        (i) => (creators[i] === a ? b : a),
        (i) => creators[i]!,
      );
      expect(await instancesInUse(a)).toBe(0);
      expect(await listAll(a)).toEqual([]);
      expect(await listAll(b)).toEqual([]);
      for (const h of hostIds) expect(cluster.guestsOf(h)).toEqual([]);
    }, 120_000);
  },
);

describe.skipIf(!available)('a control plane killed mid-build: the other one takes its task over', () => {
  /** Every call of the agent's fake driver takes this long: a build is in flight for a while. */
  const LATENCY_MS = 2000;
  const cluster = new Cluster(
    [`cpk-${randomUUID().slice(0, 8)}`],
    [
      '--reconcile-interval-ms',
      '300',
      '--host-lease-ttl-ms',
      '1500',
      '--stale-task-grace-ms',
      '500',
      '--spawn-timeout-ms',
      '5000',
    ],
  );
  const [hostId] = cluster.hostIds as [string];
  let doomed: ControlPlane;
  let survivor: ControlPlane;

  beforeAll(async () => {
    await cluster.startAgents(['--fake-latency-ms', String(LATENCY_MS)]);
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
  }, 120_000);
});
