import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type AgentProcess, startAgentProcess } from '@nova-lfs/agent/testing';
import { defaultNatsUrl, natsAvailable } from '@nova-lfs/bus-nats/testing';
import pg from 'pg';
import { expect } from 'vitest';
import { controlPlaneArgs, issueAdminToken } from '../testing/serve-process.js';
import { runServe } from './serve-command.js';
import { parseServeArgs } from './serve-options.js';
import { freePort, startServe } from './serve-process.test-helper.js';

/**
 * Test helpers of the distributed control plane (issue 13): a {@link Cluster} of `serve --store
 * postgres --bus nats` control planes (in this process or as child processes) and agent child
 * processes on one fresh PostgreSQL schema, REST helpers, and {@link auditCluster}, which reads
 * the schema directly to prove nothing leaked and no host is over-committed.
 */

const run = promisify(execFile);

/** The PostgreSQL the tests use. */
export const pgUrl = process.env.NOVA_LFS_PG_URL ?? 'postgres://nova:nova@127.0.0.1:5432/nova_test';

/** Whether the PostgreSQL at {@link pgUrl} accepts a connection within 3 s. */
export async function pgAvailable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

/** Whether the shared nats-server and PostgreSQL answer (with CI=true a miss is an error). */
export const clusterAvailable = (await natsAvailable(defaultNatsUrl)) && (await pgAvailable());
if (!clusterAvailable) {
  if (process.env.CI === 'true') throw new Error('CI=true and nats-server or PostgreSQL is not reachable');
  console.warn('skipping control-plane tests: nats-server or PostgreSQL is not reachable');
}

const PASSWORD = 'control-plane-pw-1';
/** m1.tiny: 1 vCPU, 512 MiB. */
export const TINY = '1';

/** One control plane of a {@link Cluster}, reached through its REST API with an admin token. */
export interface ControlPlane {
  readonly name: string;
  readonly url: string;
  readonly token: string;
  readonly projectId: string;
  stop(): Promise<void>;
  /** SIGKILL, for a control plane run as a child process. */
  kill?(): Promise<void>;
  /** What a child control plane printed so far. */
  output?(): string;
}

/** The fields of a server the tests read. */
export interface ServerView {
  id: string;
  status: string;
  'OS-EXT-STS:task_state': string | null;
  'OS-EXT-STS:power_state'?: number;
  'OS-EXT-SRV-ATTR:host'?: string | null;
  fault?: { code: number; message: string };
  flavor: { vcpus?: number; original_name?: string; id?: string };
}

/** A REST call with the control plane's token. */
export function call(cp: ControlPlane, method: string, path: string, body?: unknown): Promise<Response> {
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

/**
 * Polls `probe` every 100 ms until it returns a value (bounded poll of a state read through the
 * REST API, which has no event stream to wait on).
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An agent of a {@link Cluster}: its host id, driver and arguments (to restart it alike). */
export interface ClusterAgentSpec {
  readonly hostId: string;
  readonly driver?: 'fake' | 'docker';
  readonly extraArgs?: readonly string[];
}

/** Options of a {@link Cluster}. */
export interface ClusterOptions {
  /** Extra `serve` arguments of every control plane (lease times, deadlines). */
  readonly planeArgs?: readonly string[];
  /** NATS server (default: the shared one). */
  readonly natsUrl?: string;
  /** Agent heartbeat interval, ms (default 200). */
  readonly heartbeatMs?: number;
  /** `--host-down-after-ms` of the control planes (default 2000). */
  readonly hostDownAfterMs?: number;
  /** Name the agents with `--agent-host` (default true; false: the control planes discover them). */
  readonly agentHostFlags?: boolean;
}

/** One test's cluster: a fresh PostgreSQL schema, a shared data dir, agent child processes. */
export class Cluster {
  readonly schema = `nlfs_cp_${randomUUID().slice(0, 8)}`;
  readonly dataDir = mkdtempSync(join(tmpdir(), 'nlfs-cp-'));
  readonly agents = new Map<string, AgentProcess>();
  readonly planes: ControlPlane[] = [];
  readonly natsUrl: string;
  imageId = '';

  constructor(
    readonly specs: readonly ClusterAgentSpec[],
    private readonly options: ClusterOptions = {},
  ) {
    this.natsUrl = options.natsUrl ?? defaultNatsUrl;
  }

  /** The agents' host ids. */
  get hostIds(): string[] {
    return this.specs.map((s) => s.hostId);
  }

  /** Starts every agent (together). */
  async startAgents(): Promise<void> {
    await Promise.all(this.specs.map((s) => this.startAgent(s.hostId)));
  }

  /** Starts (or restarts) the agent of `hostId` with its spec's arguments. */
  async startAgent(hostId: string): Promise<AgentProcess> {
    const spec = this.specs.find((s) => s.hostId === hostId);
    if (!spec) throw new Error(`no agent ${hostId} in this cluster`);
    const agent = await startAgentProcess({
      hostId,
      driver: spec.driver ?? 'fake',
      natsUrl: this.natsUrl,
      stateDir: join(this.dataDir, 'agents', hostId),
      heartbeatMs: this.options.heartbeatMs ?? 200,
      extraArgs: spec.extraArgs ?? [],
      readyTimeoutMs: 60_000,
    });
    this.agents.set(hostId, agent);
    return agent;
  }

  /** Instance ids of the guests a fake agent has persisted in its state file. */
  guestsOf(hostId: string): string[] {
    const file = join(this.dataDir, 'agents', hostId, 'fake-guests.json');
    if (!existsSync(file)) return [];
    return (JSON.parse(readFileSync(file, 'utf8')) as [string, unknown][]).map(([id]) => id);
  }

  /** `serve --store postgres --bus nats` on this cluster: in this process, or as a child process. */
  async startPlane(name: string, how: 'in-process' | 'child' = 'in-process'): Promise<ControlPlane> {
    const port = await freePort();
    const args = controlPlaneArgs({
      // the control planes run on this machine and share the data dir (the image cache the
      // agents read by path, and the admin password)
      dataDir: this.dataDir,
      adminPassword: PASSWORD,
      pgUrl,
      pgSchema: this.schema,
      natsUrl: this.natsUrl,
      agentHosts: this.options.agentHostFlags === false ? [] : this.hostIds,
      hostDownAfterMs: this.options.hostDownAfterMs ?? 2000,
      logLevel: how === 'child' ? 'warn' : 'silent',
      extraArgs: this.options.planeArgs ?? [],
    });
    let url: string;
    let stop: () => Promise<void>;
    let kill: (() => Promise<void>) | undefined;
    let output: (() => string) | undefined;
    if (how === 'child') {
      const child = await startServe(args, port);
      url = child.url;
      stop = async () => void (await child.stop());
      kill = () => child.kill();
      output = () => child.output();
    } else {
      const options = parseServeArgs(['--listen', `127.0.0.1:${port}`, ...args], {});
      if (options === 'help') throw new Error('unexpected help');
      const service = await runServe(options, { print: () => undefined });
      url = service.url;
      stop = () => service.stop();
    }
    const { token, projectId } = await issueAdminToken(url, PASSWORD);
    const plane: ControlPlane = {
      name,
      url,
      token,
      projectId,
      stop,
      ...(kill ? { kill } : {}),
      ...(output ? { output } : {}),
    };
    this.planes.push(plane);
    return plane;
  }

  /**
   * Uploads an image through `cp`'s image API (default: 8 raw bytes for the fake hosts, with
   * `hypervisor_type=fake` so that it is never placed on a Docker host). Sets {@link imageId}.
   */
  async uploadImage(
    cp: ControlPlane,
    bytes: Uint8Array = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
    hypervisorType = 'fake',
    containerFormat = 'bare',
  ): Promise<string> {
    const created = await call(cp, 'POST', '/image/v2/images', {
      name: `cp-image-${hypervisorType}`,
      disk_format: 'raw',
      container_format: containerFormat,
      visibility: 'public',
      hypervisor_type: hypervisorType,
    });
    expect(created.status).toBe(201);
    const id = ((await created.json()) as { id: string }).id;
    const uploaded = await fetch(`${cp.url}/image/v2/images/${id}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': cp.token, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(uploaded.status).toBe(204);
    if (!this.imageId) this.imageId = id;
    return id;
  }

  /** Stops everything, drops the schemas, removes the data dir. */
  async close(): Promise<void> {
    for (const p of this.planes) await p.stop().catch(() => undefined);
    for (const a of this.agents.values()) await a.stop();
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    try {
      await c.query(`DROP SCHEMA IF EXISTS ${c.escapeIdentifier(this.schema)} CASCADE`);
      await c.query(`DROP SCHEMA IF EXISTS ${c.escapeIdentifier(`${this.schema}_api`)} CASCADE`);
    } finally {
      await c.end();
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A server as `cp` shows it, or `'gone'` (404). */
export const show = async (cp: ControlPlane, id: string): Promise<ServerView | 'gone'> => {
  const r = await call(cp, 'GET', `/v2.1/servers/${id}`);
  if (r.status === 404) return 'gone';
  expect(r.status).toBe(200);
  return ((await r.json()) as { server: ServerView }).server;
};

/** Waits until a server is ACTIVE or ERROR with no task (the timeout's error shows its last state). */
export const settled = async (cp: ControlPlane, id: string, timeoutMs = 30_000): Promise<ServerView> => {
  let last = 'not read';
  try {
    return await waitFor(
      `server ${id} to settle`,
      async () => {
        const s = await show(cp, id);
        if (s === 'gone') throw new Error(`server ${id} vanished`);
        last = `${s.status}/${s['OS-EXT-STS:task_state']} on ${s['OS-EXT-SRV-ATTR:host']}`;
        return (s.status === 'ACTIVE' || s.status === 'ERROR') && s['OS-EXT-STS:task_state'] === null
          ? s
          : undefined;
      },
      timeoutMs,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message} (last seen ${last} through ${cp.name})`);
  }
};

/** POST /servers of one m1.tiny (or `flavorRef`) without a network. */
export const create = (cp: ControlPlane, imageId: string, name: string, flavorRef = TINY) =>
  call(cp, 'POST', '/v2.1/servers', {
    server: { name, imageRef: imageId, flavorRef, networks: 'none' },
  });

/** The id of a created server (202). */
export const createdId = async (r: Response): Promise<string> => {
  expect(r.status).toBe(202);
  return ((await r.json()) as { server: { id: string } }).server.id;
};

/** Deletes every server, server i through `by(i)`, and waits until both planes no longer show it. */
export const deleteAll = async (
  ids: readonly string[],
  by: (i: number) => ControlPlane,
  other: (i: number) => ControlPlane,
  timeoutMs = 30_000,
) => {
  const deleted = await Promise.all(ids.map((id, i) => call(by(i), 'DELETE', `/v2.1/servers/${id}`)));
  for (const r of deleted) expect(r.status).toBe(204);
  for (const [i, id] of ids.entries()) {
    await waitFor(
      `server ${id} to be deleted`,
      async () => ((await show(by(i), id)) === 'gone' ? true : undefined),
      timeoutMs,
    );
    expect(await show(other(i), id)).toBe('gone');
  }
};

/** Every server of every project. */
export const listAll = async (cp: ControlPlane): Promise<ServerView[]> => {
  const r = await call(cp, 'GET', '/v2.1/servers/detail?all_tenants=1');
  expect(r.status).toBe(200);
  return ((await r.json()) as { servers: ServerView[] }).servers;
};

/** The admin project's instances in use, as the quota API reports it. */
export const instancesInUse = async (cp: ControlPlane): Promise<number> => {
  const r = await call(cp, 'GET', `/v2.1/os-quota-sets/${cp.projectId}/detail`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { quota_set: { instances: { in_use: number } } }).quota_set.instances.in_use;
};

/** What {@link auditCluster} found in the engine's schema. */
export interface ClusterAudit {
  /** Instances with a task still set (a stuck task once everything settled). */
  readonly pendingTasks: { id: string; task: string }[];
  /** Instances by host (null: none). */
  readonly instancesByHost: Map<string | null, string[]>;
  /** Claims whose instance is gone or sits on another host. */
  readonly orphanClaims: { id: string; instanceId: string; hostId: string }[];
  /** Hosts whose claimed resources exceed their capacity, or whose usage rows differ from their claims. */
  readonly overCommitted: {
    hostId: string;
    resourceClass: string;
    claimed: number;
    used: number;
    capacity: number;
  }[];
  /** Quota usage rows that differ from the instances counted (instances, cores, ram). */
  readonly quotaMismatch: { projectId: string; stored: number[]; counted: number[] }[];
  /** Quota reservations left (admissions never committed nor rolled back). */
  readonly reservations: number;
  /** Claims in all. */
  readonly claims: number;
}

/**
 * Reads the engine's PostgreSQL schema and checks its invariants: every claim belongs to a live
 * instance on the claim's host; per host and resource class, the claimed sum equals the stored
 * usage and is within `(total - reserved) * allocationRatio`; per project, the quota usage equals
 * the instances' flavors summed; no reservation is left; which tasks are still set.
 */
export async function auditCluster(schema: string): Promise<ClusterAudit> {
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  try {
    const q = async <R>(text: string) => (await c.query(text)).rows as R[];
    const s = c.escapeIdentifier(schema);
    const instances = await q<{
      id: string;
      host_id: string | null;
      task_state: string | null;
      data: string;
      project_id: string;
    }>(`select id, host_id, task_state, data, project_id from ${s}.instances`);
    const claims = await q<{ id: string; instance_id: string; host_id: string; data: string }>(
      `select id, instance_id, host_id, data from ${s}.claims`,
    );
    const hosts = await q<{ id: string; data: string }>(`select id, data from ${s}.hosts`);
    const usage = await q<{ host_id: string; resource_class: string; used: number }>(
      `select host_id, resource_class, used from ${s}.host_usage`,
    );
    const quota = await q<{ project_id: string; instances: number; cores: number; ram_mb: string }>(
      `select project_id, instances, cores, ram_mb from ${s}.quota_usage`,
    );
    const reservations = await q<{ n: string }>(`select count(*) as n from ${s}.quota_reservations`);
    const byId = new Map(instances.map((i) => [i.id, i]));
    const instancesByHost = new Map<string | null, string[]>();
    for (const i of instances)
      instancesByHost.set(i.host_id, [...(instancesByHost.get(i.host_id) ?? []), i.id]);
    const orphanClaims = claims
      .filter((cl) => byId.get(cl.instance_id)?.host_id !== cl.host_id)
      .map((cl) => ({ id: cl.id, instanceId: cl.instance_id, hostId: cl.host_id }));
    const claimed = new Map<string, number>();
    for (const cl of claims) {
      const { resources } = JSON.parse(cl.data) as { resources: Record<string, number> };
      for (const [rc, n] of Object.entries(resources))
        claimed.set(`${cl.host_id}\u0000${rc}`, (claimed.get(`${cl.host_id}\u0000${rc}`) ?? 0) + n);
    }
    const used = new Map(usage.map((u) => [`${u.host_id}\u0000${u.resource_class}`, Number(u.used)]));
    const overCommitted: ClusterAudit['overCommitted'] = [];
    for (const h of hosts) {
      const { inventory } = JSON.parse(h.data) as {
        inventory: Record<string, { total: number; reserved?: number; allocationRatio?: number }>;
      };
      for (const [rc, inv] of Object.entries(inventory)) {
        const capacity = Math.floor((inv.total - (inv.reserved ?? 0)) * (inv.allocationRatio ?? 1));
        const k = `${h.id}\u0000${rc}`;
        const cl = claimed.get(k) ?? 0;
        const u = used.get(k) ?? 0;
        if (cl > capacity || u > capacity || cl !== u)
          overCommitted.push({ hostId: h.id, resourceClass: rc, claimed: cl, used: u, capacity });
      }
    }
    const counted = new Map<string, number[]>();
    for (const i of instances) {
      const { flavor } = JSON.parse(i.data) as { flavor?: { vcpus: number; ramMb: number } };
      const sum = counted.get(i.project_id) ?? [0, 0, 0];
      counted.set(i.project_id, [
        sum[0]! + 1,
        sum[1]! + (flavor?.vcpus ?? 0),
        sum[2]! + (flavor?.ramMb ?? 0),
      ]);
    }
    const quotaMismatch: ClusterAudit['quotaMismatch'] = [];
    const projects = new Set([...counted.keys(), ...quota.map((r) => r.project_id)]);
    for (const p of projects) {
      const row = quota.find((r) => r.project_id === p);
      const stored = row ? [row.instances, row.cores, Number(row.ram_mb)] : [0, 0, 0];
      const want = counted.get(p) ?? [0, 0, 0];
      if (stored.some((v, k) => v !== want[k])) quotaMismatch.push({ projectId: p, stored, counted: want });
    }
    return {
      pendingTasks: instances
        .filter((i) => i.task_state !== null)
        .map((i) => ({ id: i.id, task: i.task_state as string })),
      instancesByHost,
      orphanClaims,
      overCommitted,
      quotaMismatch,
      reservations: Number(reservations[0]?.n ?? 0),
      claims: claims.length,
    };
  } finally {
    await c.end();
  }
}

/** Asserts the invariants of a settled cluster (no pending task, no orphan, nothing over-committed, quota exact). */
export function expectConsistent(audit: ClusterAudit): void {
  expect(audit.pendingTasks, 'tasks still set').toEqual([]);
  expect(audit.orphanClaims, 'claims without their instance on their host').toEqual([]);
  expect(audit.overCommitted, 'hosts over capacity or usage differing from claims').toEqual([]);
  expect(audit.quotaMismatch, 'quota usage differing from the instances').toEqual([]);
  expect(audit.reservations, 'quota reservations left').toBe(0);
}

/**
 * Sets the admin project's instances quota to `quota` through `a`, sends `quota + extra` creates
 * at once alternating between `b` and `a`, and checks that exactly `quota` are admitted (202) and
 * `extra` refused (403), that the admitted ones go ACTIVE and count as in use on both planes; then
 * deletes them through the plane that did not create each, and checks that nothing is left (no
 * instance, quota usage, claim or fake guest).
 */
export async function expectQuotaAdmission(
  cluster: Cluster,
  a: ControlPlane,
  b: ControlPlane,
  quota: number,
  extra: number,
  imageId = cluster.imageId,
): Promise<void> {
  const set = await call(a, 'PUT', `/v2.1/os-quota-sets/${a.projectId}`, { quota_set: { instances: quota } });
  expect(set.status).toBe(200);
  const by = (i: number) => (i % 2 === 0 ? b : a);
  const responses = await Promise.all(
    Array.from({ length: quota + extra }, (_, i) => create(by(i), imageId, `quota-${i}`)),
  );
  const statuses = responses.map((r) => r.status);
  expect(statuses.filter((s) => s === 202)).toHaveLength(quota);
  expect(statuses.filter((s) => s === 403)).toHaveLength(extra);
  const ids: string[] = [];
  const creators: ControlPlane[] = [];
  for (const [i, r] of responses.entries())
    if (r.status === 202) {
      ids.push(await createdId(r));
      creators.push(by(i));
    } else await r.body?.cancel();
  for (const id of ids) expect((await settled(a, id, 60_000)).status).toBe('ACTIVE');
  expect(await instancesInUse(b)).toBe(quota);
  expectConsistent(await auditCluster(cluster.schema));
  await deleteAll(
    ids,
    (i) => (creators[i] === a ? b : a),
    (i) => creators[i]!,
  );
  expect(await instancesInUse(a)).toBe(0);
  expect(await listAll(a)).toEqual([]);
  expect(await listAll(b)).toEqual([]);
  for (const h of cluster.hostIds)
    if (cluster.specs.find((x) => x.hostId === h)?.driver !== 'docker')
      expect(cluster.guestsOf(h)).toEqual([]);
  const audit = await auditCluster(cluster.schema);
  expectConsistent(audit);
  expect(audit.claims).toBe(0);
}

/** Container ids on the local dockerd labelled with `hostId` (running or not). */
export async function dockerContainersOf(hostId: string): Promise<string[]> {
  const { stdout } = await run('docker', ['ps', '-a', '-q', '--filter', `label=nova-lfs.host=${hostId}`]);
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

/** A seeded pseudo-random generator (mulberry32): numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
