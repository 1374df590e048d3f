import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseAgentArgs, type RunningAgent, runAgent } from '@nova-lfs/agent';
import {
  type BusLogger,
  BusRpcClient,
  BusRpcServer,
  busIdSchema,
  connectBus,
  defineRpcMethod,
  encodeEnvelope,
  ensureHostsBucket,
  type HeartbeatEnvelope,
  HostLiveness,
  openHostsBucket,
} from '@nova-lfs/bus-nats';
import { freeLoopbackPort } from '@nova-lfs/bus-nats/testing';
import { controlPlaneArgs, issueAdminToken, type ServeProcess, startServe } from '@nova-lfs/cli/testing';
import pg from 'pg';
import { percentile, printReport } from '../report.js';
import { call, type Endpoint, EventFollower, request } from '../rest-client.js';

/**
 * `pnpm bench cluster [--agents N] [--agents-per-process N] [--concurrency N] [--seconds S]
 *  [--warmup-seconds S] [--rpc-calls N] [--sim-agents N] [--heartbeat-ms MS] [--down-after-ms MS]
 *  [--skip-liveness]`: issue 13's cluster figures, measured for real against the nats-server at
 * `NOVA_LFS_NATS_URL` (default nats://127.0.0.1:4222) and the PostgreSQL at `NOVA_LFS_PG_URL`:
 *
 * 1. RPC round trip of a trivial method on a `BusRpcServer` (client and server on two
 *    connections, calls one after another).
 * 2. Liveness at scale: a child process plays N agents (default 10,000) heartbeating every
 *    `--heartbeat-ms` (default 10 s) by writing their keys (the agents' own heartbeat envelopes)
 *    into a bucket of the run's own from one connection, spread evenly over the interval; this
 *    process runs only a `HostLiveness` over that bucket (the control plane's liveness part), and
 *    its CPU over the window is the control plane's CPU for liveness. One simulated host goes
 *    silent; the time from its last stored beat to `HostLiveness` marking it down, over
 *    `downAfterMs`, is the detection figure.
 * 3. Pairs end to end, as deployed: `--agents` (default 100) `nova-lfs-agent`s (fake driver, zero
 *    latency, guests persisted to files), `--agents-per-process` (default 25) of them sharing one
 *    child process (each started by the agent command's own `parseAgentArgs` + `runAgent`, on its
 *    own NATS connection), and two `nova-lfs serve --store postgres --bus nats` child processes on
 *    one fresh PostgreSQL schema naming every agent with `--agent-host` (started by
 *    `@nova-lfs/cli/testing`, as the cluster tests start them). `--concurrency` callers (half on
 *    each control plane) POST a server through the REST API, wait for its ACTIVE event on that
 *    plane's `GET /v2.1/events` stream, DELETE it through the other plane and wait for its
 *    deletion event there. Then the same callers against one `nova-lfs serve --store postgres
 *    --fake-hosts N` process (the single-process engine, local fake drivers) on a second fresh
 *    schema of the same PostgreSQL, and the ratio.
 */
export default async function cluster(args: string[]): Promise<boolean> {
  const opt = (name: string, dflt: string): string => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? (args[i + 1] ?? dflt) : dflt;
  };
  const natsUrl = process.env.NOVA_LFS_NATS_URL ?? 'nats://127.0.0.1:4222';
  const pgUrl = process.env.NOVA_LFS_PG_URL ?? 'postgres://nova:nova@127.0.0.1:5432/nova_test';
  const rpcCalls = Number(opt('rpc-calls', '3000'));
  const simAgents = Number(opt('sim-agents', '10000'));
  const heartbeatMs = Number(opt('heartbeat-ms', '10000'));
  const downAfterMs = Number(opt('down-after-ms', '30000'));
  const agentCount = Math.max(1, Math.min(1000, Number(opt('agents', '100'))));
  const agentsPerProcess = Math.max(1, Number(opt('agents-per-process', '25')));
  const concurrency = Math.max(2, Number(opt('concurrency', '32')));
  const seconds = Number(opt('seconds', '20'));
  const warmupSeconds = Number(opt('warmup-seconds', '3'));
  const skipLiveness = args.includes('--skip-liveness');
  const tag = `${process.pid}${randomUUID().slice(0, 4)}`;

  const rpc = await measureRpc(natsUrl, rpcCalls, tag);
  const live = skipLiveness
    ? undefined
    : await measureLiveness(natsUrl, { simAgents, heartbeatMs, downAfterMs, tag });
  const pairsOpts = {
    pgUrl,
    natsUrl,
    agentCount,
    agentsPerProcess,
    concurrency,
    seconds,
    warmupSeconds,
    tag,
  };
  const clusterRun = await measureClusterPairs(pairsOpts);
  const single = await measureSingleProcessPairs(pairsOpts);

  const clusterPps = clusterRun.pairs / clusterRun.seconds;
  const singlePps = single.pairs / single.seconds;
  const r1 = (x: number) => Math.round(x * 10) / 10;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const perPair = (run: PairsRun, cpuMs: number) => Math.round((cpuMs * 1000) / Math.max(1, run.pairs));
  const agentProcesses = Math.ceil(agentCount / agentsPerProcess);
  return printReport(
    'cluster',
    {
      nats: `${natsUrl} (nats-server, JetStream)`,
      postgres: `${pgUrl.replace(/:[^:@/]*@/, ':***@')}, fresh schemas bench_cluster_${tag} and bench_single_${tag} (+ _api; dropped after)`,
      rpc: `${rpc.calls} calls of a trivial echo method on a BusRpcServer, one after another, client and server on two connections, after 200 warm-up calls`,
      liveness: live
        ? `${simAgents} simulated agents (a child process putting each agent's heartbeat envelope in a bucket of the run's own from one connection, ${heartbeatMs} ms apart per key, spread evenly), one HostLiveness (downAfterMs ${downAfterMs}, sweep ${live.checkIntervalMs} ms) alone in this process; CPU over ${Math.round(live.windowMs / 1000)} s after every agent had beaten once; ${live.beatsSeen} hosts up at its end`
        : 'skipped (--skip-liveness)',
      controlPlanes: `2 nova-lfs serve --store postgres --bus nats child processes on one schema, each with --agent-host for all ${agentCount} agents, --host-down-after-ms ${downAfterMs}, --rate-limit 0, --log-level warn`,
      agents: `${agentCount} nova-lfs-agent --driver fake (zero latency, guests persisted to files, default inventory 16 vCPU / 64 GiB, heartbeat 1 s) in ${agentProcesses} child processes of ${agentsPerProcess}, each agent on its own NATS connection`,
      singleProcess: `1 nova-lfs serve --store postgres --fake-hosts ${agentCount} child process (local fake drivers, same inventory) on a second schema of the same PostgreSQL, measured after the cluster run (its processes stopped)`,
      pairs: `${concurrency} concurrent REST callers in this process for ${seconds} s each run after ${warmupSeconds} s warm-up: POST /v2.1/servers (m1.tiny, admin token), ACTIVE event on the creating plane's GET /v2.1/events, DELETE through the other plane (cluster; the same plane single-process), its deletion event there; cluster callers split evenly over the two planes`,
      createToActive:
        'from sending the POST to reading the ACTIVE event (client side, includes the REST round trip)',
      cpuPerPair: `CPU time per pair of each process group over the measured window (/proc/PID/stat, clock ticks of ${1000 / clockTickMs()} Hz); this process plays the callers`,
      note: 'the machine has 2 cores shared with other jobs (load average printed below): every process of the run competes for them',
      loadAverage: (await import('node:os'))
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' '),
    },
    {
      rpcP50Ms: { value: r3(rpc.p50), unit: 'ms' },
      rpcP99Ms: { value: r3(rpc.p99), unit: 'ms', target: { op: '<=', value: 5 } },
      ...(live
        ? {
            livenessCpuPercentOfCore: {
              value: r1(live.cpuPercent),
              unit: '% of one core',
              target: { op: '<=', value: 20 },
            },
            hostDownDetectionOverTimeout: {
              value: r3(live.detectionMs / downAfterMs),
              unit: 'x downAfterMs',
              target: { op: '<=', value: 2 },
            },
            hostDownDetectionMs: {
              value: Math.round(live.detectionMs),
              unit: 'ms (last stored beat to down)',
            },
          }
        : {}),
      clusterPairsPerSecond: { value: r1(clusterPps), unit: 'pairs/s' },
      clusterPairs: { value: clusterRun.pairs, unit: 'pairs' },
      createToActiveP99Ms: { value: r3(percentile(clusterRun.createLat, 99)), unit: 'ms (cluster)' },
      createToActiveP50Ms: { value: r3(percentile(clusterRun.createLat, 50)), unit: 'ms (cluster)' },
      singleProcessPairsPerSecond: { value: r1(singlePps), unit: 'pairs/s' },
      singleProcessPairs: { value: single.pairs, unit: 'pairs' },
      singleProcessCreateToActiveP99Ms: {
        value: r3(percentile(single.createLat, 99)),
        unit: 'ms (single process)',
      },
      singleProcessCreateToActiveP50Ms: {
        value: r3(percentile(single.createLat, 50)),
        unit: 'ms (single process)',
      },
      clusterOverSingleProcess: {
        value: Math.round((clusterPps / singlePps) * 100) / 100,
        unit: 'x',
        target: { op: '>=', value: 0.5 },
      },
      clusterControlPlaneCpuPerPair: {
        value: perPair(clusterRun, clusterRun.cpuMs.planes),
        unit: 'µs (both serve processes)',
      },
      clusterAgentCpuPerPair: {
        value: perPair(clusterRun, clusterRun.cpuMs.agents),
        unit: `µs (all ${agentProcesses} agent processes)`,
      },
      clusterCallerCpuPerPair: {
        value: perPair(clusterRun, clusterRun.cpuMs.callers),
        unit: 'µs (this process)',
      },
      singleProcessCpuPerPair: {
        value: perPair(single, single.cpuMs.planes),
        unit: 'µs (the serve process)',
      },
      failedPairs: {
        value: clusterRun.failures + single.failures,
        unit: 'pairs (both runs)',
        target: { op: '<=', value: 0 },
      },
      rowsLeftAfterRun: {
        value: clusterRun.left + single.left,
        unit: 'instances+claims (both runs)',
        target: { op: '<=', value: 0 },
      },
    },
  );
}

/** Logs bus warnings once each (a benchmark's output stays readable). */
const quietLogger = (): BusLogger & { count: number } => {
  const seen = new Set<string>();
  return {
    count: 0,
    warn(message, fields) {
      this.count++;
      if (seen.has(message)) return;
      seen.add(message);
      console.error(`bus warning: ${message} ${JSON.stringify(fields)}`);
    },
  };
};

// ---- 1. RPC round trip ---------------------------------------------------------------------

async function measureRpc(
  natsUrl: string,
  calls: number,
  tag: string,
): Promise<{ calls: number; p50: number; p99: number }> {
  const ping = defineRpcMethod('bench.ping', busIdSchema, busIdSchema);
  const hostId = `bench-rpc-${tag}`;
  const serverNc = await connectBus({ servers: natsUrl, name: 'bench-rpc-server' });
  const clientNc = await connectBus({ servers: natsUrl, name: 'bench-rpc-client' });
  const server = new BusRpcServer(serverNc, { hostId, logger: quietLogger() });
  server.handle(ping, (p) => p);
  await server.start();
  const client = new BusRpcClient(clientNc, { senderId: `bench-cp-${tag}`, logger: quietLogger() });
  try {
    for (let i = 0; i < 200; i++) await client.call(hostId, ping, 'warm', { deadlineMs: 5000 });
    const lat = new Float64Array(calls);
    for (let i = 0; i < calls; i++) {
      const t = performance.now();
      await client.call(hostId, ping, 'ping', { deadlineMs: 5000 });
      lat[i] = performance.now() - t;
    }
    lat.sort();
    return { calls, p50: percentile(lat, 50), p99: percentile(lat, 99) };
  } finally {
    client.close();
    await server.stop();
    await clientNc.close();
    await serverNc.close();
  }
}

// ---- 2. Liveness at scale ------------------------------------------------------------------

const simHostId = (i: number) => `sim-${String(i).padStart(5, '0')}`;

async function measureLiveness(
  natsUrl: string,
  o: { simAgents: number; heartbeatMs: number; downAfterMs: number; tag: string },
): Promise<{
  cpuPercent: number;
  windowMs: number;
  detectionMs: number;
  beatsSeen: number;
  checkIntervalMs: number;
}> {
  const bucket = `bench_hosts_${o.tag}`;
  const nc = await connectBus({ servers: natsUrl, name: 'bench-liveness' });
  const checkIntervalMs = Math.max(10, Math.min(1000, o.downAfterMs / 4));
  const liveness = new HostLiveness(nc, { downAfterMs: o.downAfterMs, bucket, logger: quietLogger() });
  let child: ChildProcess | undefined;
  try {
    await liveness.start();
    let beatsSeen = 0;
    let up = 0;
    const silentId = simHostId(0);
    let silentDown: { at: number; lastBeatAt: number } | undefined;
    let allUp: () => void = () => undefined;
    const allUpP = new Promise<void>((r) => {
      allUp = r;
    });
    let down: () => void = () => undefined;
    const downP = new Promise<void>((r) => {
      down = r;
    });
    liveness.changes$.subscribe((c) => {
      if (c.up) {
        up++;
        if (up === o.simAgents) {
          allUp();
        }
      } else if (c.hostId === silentId) {
        silentDown = { at: c.at, lastBeatAt: c.lastBeatAt ?? Number.NaN };
        down();
      }
    });
    // the simulator: a child process, so that its puts are not counted as the control plane's CPU
    const self = fileURLToPath(import.meta.url);
    child = spawn(
      process.execPath,
      [
        '--conditions=@nova-lfs/source',
        '--import',
        'tsx',
        self,
        '--simulate-heartbeats',
        natsUrl,
        bucket,
        String(o.simAgents),
        String(o.heartbeatMs),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: child.stdout! });
    const simReady = new Promise<void>((resolve, reject) => {
      lines.on('line', (l) => {
        if (l.includes('"first-round-done"')) resolve();
      });
      child!.once('exit', (code) => reject(new Error(`heartbeat simulator exited ${code}`)));
    });
    const countBeats = () => {
      beatsSeen = liveness.hosts().reduce((n, h) => n + (h.up ? 1 : 0), 0);
    };
    await Promise.race([
      simReady,
      new Promise((_, rej) => setTimeout(() => rej(new Error('simulator slow')), 60_000)),
    ]);
    await allUpP;
    // steady state: every agent beats every heartbeatMs; tell the simulator to silence host 0
    child.stdin!.write('silence\n');
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.race([
      downP,
      new Promise((_, rej) =>
        setTimeout(() => rej(new Error('silent host never marked down')), 3 * o.downAfterMs),
      ),
    ]);
    // keep the window at least two heartbeat intervals long
    const minEnd = t0 + 2 * o.heartbeatMs;
    if (performance.now() < minEnd) await new Promise((r) => setTimeout(r, minEnd - performance.now()));
    const cpu = process.cpuUsage(cpu0);
    const windowMs = performance.now() - t0;
    countBeats();
    const d = silentDown!;
    return {
      cpuPercent: ((cpu.user + cpu.system) / 1000 / windowMs) * 100,
      windowMs,
      detectionMs: d.at - d.lastBeatAt,
      beatsSeen,
      checkIntervalMs,
    };
  } finally {
    child?.kill('SIGTERM');
    liveness.stop();
    const kv = await ensureHostsBucket(nc, o.downAfterMs, bucket).catch(() => undefined);
    await kv?.destroy().catch(() => undefined);
    await nc.close();
  }
}

/** The child: `count` agents' heartbeats into `bucket`, each key every `intervalMs`, spread evenly. */
async function simulateHeartbeats(natsUrl: string, bucket: string, count: number, intervalMs: number) {
  const nc = await connectBus({ servers: natsUrl, name: 'bench-heartbeat-sim' });
  const kv = await openHostsBucket(nc, bucket);
  const startedAt = Date.now();
  const seq = new Array<number>(count).fill(0);
  let silenced = false;
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l.trim() === 'silence') silenced = true;
  });
  process.on('SIGTERM', () => {
    void nc.close().finally(() => process.exit(0));
  });
  const beat = (i: number) => {
    const hostId = simHostId(i);
    const env: HeartbeatEnvelope = {
      v: 2,
      kind: 'heartbeat',
      id: randomUUID(),
      sender: hostId,
      sentAt: Date.now(),
      seq: seq[i]!++,
      intervalMs,
      startedAt,
    };
    return kv.put(hostId, encodeEnvelope(env));
  };
  // first round as fast as the server takes it (in batches of 500), then steady state
  for (let i = 0; i < count; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, k) => beat(i + k)));
  }
  console.log(JSON.stringify({ event: 'first-round-done' }));
  // steady state: ticks every 100 ms, each putting count * 100 / intervalMs keys
  const tickMs = 100;
  const perTick = Math.max(1, Math.ceil((count * tickMs) / intervalMs));
  let next = 0;
  const t0 = performance.now();
  for (let tick = 1; ; tick++) {
    const batch: Promise<unknown>[] = [];
    for (let k = 0; k < perTick; k++) {
      const i = next;
      next = (next + 1) % count;
      if (i === 0 && silenced) continue;
      batch.push(beat(i));
    }
    await Promise.all(batch);
    const wait = t0 + tick * tickMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

// ---- 3. Pairs end to end -------------------------------------------------------------------

/** What one pairs run measured. */
interface PairsRun {
  readonly pairs: number;
  readonly seconds: number;
  /** POST sent to ACTIVE event read, ms, sorted. */
  readonly createLat: Float64Array;
  readonly failures: number;
  /** CPU over the measured window, ms: the serve process(es), the agent processes, this process. */
  readonly cpuMs: { readonly planes: number; readonly agents: number; readonly callers: number };
  /** Instances and claims left in the engine's schema after the run. */
  readonly left: number;
}

/** Options of both pairs runs. */
interface PairsOptions {
  readonly pgUrl: string;
  readonly natsUrl: string;
  readonly agentCount: number;
  readonly agentsPerProcess: number;
  readonly concurrency: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly tag: string;
}

/** A control plane as the callers reach it. */
interface Plane {
  readonly endpoint: Endpoint;
  readonly token: string;
}

const ADMIN_PASSWORD = 'bench-cluster-admin-pw';

let tickMs: number | undefined;
/** One clock tick in ms (`/proc` reports CPU times in ticks). */
function clockTickMs(): number {
  tickMs ??= 1000 / (Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100);
  return tickMs;
}

/** CPU time (user + system) process `pid` used so far, in ms. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // after "(comm) " the fields start at the state (field 3): utime is field 14, stime 15
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * clockTickMs();
}

/** A child process running several agents (`--agent-group`). */
interface AgentGroup {
  readonly pid: number;
  /** SIGTERM: every agent stops cleanly (deregisters its heartbeat); resolves once it exited. */
  stop(): Promise<void>;
}

async function startAgentGroup(o: {
  natsUrl: string;
  stateRoot: string;
  hostIds: readonly string[];
  heartbeatMs: number;
}): Promise<AgentGroup> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--conditions=@nova-lfs/source',
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      '--agent-group',
      o.natsUrl,
      o.stateRoot,
      String(o.heartbeatMs),
      o.hostIds.join(','),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-20_000);
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent group not ready within 180 s; stderr:\n${stderr}`));
    }, 180_000);
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (l.includes('"agent-group.ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`agent group exited (${code}) before it was ready; stderr:\n${stderr}`));
    });
  });
  return {
    pid: child.pid ?? -1,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The child: the agents of `hostIds`, each as `nova-lfs-agent --driver fake` runs it. */
async function runAgentGroup(natsUrl: string, stateRoot: string, heartbeatMs: number, hostIds: string[]) {
  const running: RunningAgent[] = [];
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void Promise.all(running.map((a) => a.stop().catch(() => undefined))).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  for (let i = 0; i < hostIds.length; i += 10) {
    const batch = hostIds.slice(i, i + 10);
    running.push(
      ...(await Promise.all(
        batch.map((hostId) =>
          runAgent(
            parseAgentArgs([
              '--host-id',
              hostId,
              '--driver',
              'fake',
              '--nats-url',
              natsUrl,
              '--state-dir',
              join(stateRoot, hostId),
              '--heartbeat-ms',
              String(heartbeatMs),
            ]),
          ),
        ),
      )),
    );
  }
  const notBeating = running.filter((a) => !a.report.heartbeating).length;
  console.log(JSON.stringify({ event: 'agent-group.ready', hosts: running.length, notBeating }));
}

/** A server create body: m1.tiny of `imageId`, no network (microversion 2.1). */
const createBody = (imageId: string) =>
  JSON.stringify({ server: { name: 'bench', imageRef: imageId, flavorRef: '1' } });

/**
 * Logs the admin in on every plane, lifts the admin project's quota and uploads a fake image
 * through the first plane.
 * @returns the planes as callers reach them and the image's id
 */
async function prepare(services: readonly ServeProcess[]): Promise<{ planes: Plane[]; imageId: string }> {
  const planes: Plane[] = [];
  let projectId = '';
  for (const s of services) {
    const admin = await issueAdminToken(s.url, ADMIN_PASSWORD);
    projectId = admin.projectId;
    const u = new URL(s.url);
    planes.push({ endpoint: { host: u.hostname, port: Number(u.port) }, token: admin.token });
  }
  const first = planes[0]!;
  await call(
    first.endpoint,
    'PUT',
    `/v2.1/os-quota-sets/${projectId}`,
    first.token,
    { quota_set: { instances: -1, cores: -1, ram: -1 } },
    200,
  );
  const created = await call(
    first.endpoint,
    'POST',
    '/image/v2/images',
    first.token,
    {
      name: 'bench-fake',
      disk_format: 'raw',
      container_format: 'bare',
      visibility: 'public',
      hypervisor_type: 'fake',
    },
    201,
  );
  const imageId = created.json.id as string;
  const uploaded = await fetch(`${services[0]!.url}/image/v2/images/${imageId}/file`, {
    method: 'PUT',
    headers: { 'x-auth-token': first.token, 'content-type': 'application/octet-stream' },
    body: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
  });
  if (uploaded.status !== 204) throw new Error(`PUT image file answered ${uploaded.status}`);
  return { planes, imageId };
}

/**
 * `concurrency` callers, caller k on plane k mod n: POST, its ACTIVE event on that plane's
 * stream, DELETE through the next plane, its deletion event there; `warmupSeconds` unmeasured,
 * then `seconds` measured. `cpuOf` reads the CPU (ms) of the measured processes.
 */
async function runPairs(
  planes: readonly Plane[],
  imageId: string,
  o: { concurrency: number; seconds: number; warmupSeconds: number },
  cpuOf: () => { planes: number; agents: number },
): Promise<Omit<PairsRun, 'left'>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency + 8 });
  const followers = planes.map(() => new EventFollower());
  const body = createBody(imageId);
  try {
    await Promise.all(followers.map((f, i) => f.open(planes[i]!.endpoint, planes[i]!.token)));
    const createLat: number[] = [];
    let pairs = 0;
    let failures = 0;
    let measuring = false;
    const pair = async (k: number) => {
      const cp = planes[k % planes.length]!;
      const dp = planes[(k + 1) % planes.length]!;
      const a = performance.now();
      const created = await request(agent, cp.endpoint, 'POST', '/v2.1/servers', cp.token, body);
      if (created.status !== 202)
        throw new Error(`POST /v2.1/servers answered ${created.status}: ${created.text.slice(0, 300)}`);
      const id = (JSON.parse(created.text) as { server: { id: string } }).server.id;
      await followers[k % planes.length]!.until(id, 'active');
      const toActive = performance.now() - a;
      const deleted = await request(agent, dp.endpoint, 'DELETE', `/v2.1/servers/${id}`, dp.token);
      if (deleted.status !== 204)
        throw new Error(
          `DELETE /v2.1/servers/${id} answered ${deleted.status}: ${deleted.text.slice(0, 300)}`,
        );
      await followers[(k + 1) % planes.length]!.until(id, 'deleted');
      return toActive;
    };
    const loop = async (k: number, until: number) => {
      while (performance.now() < until) {
        const counted = measuring;
        try {
          const toActive = await pair(k);
          if (counted && measuring) {
            createLat.push(toActive);
            pairs++;
          }
        } catch (e) {
          if (counted) failures++;
          if (failures <= 3) console.error(`pair failed: ${String(e)}`);
        }
      }
    };
    const warmEnd = performance.now() + o.warmupSeconds * 1000;
    await Promise.all(Array.from({ length: o.concurrency }, (_, k) => loop(k, warmEnd)));
    const cpu0 = cpuOf();
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    measuring = true;
    await Promise.all(Array.from({ length: o.concurrency }, (_, k) => loop(k, t0 + o.seconds * 1000)));
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuOf();
    const self = process.cpuUsage(self0);
    return {
      pairs,
      seconds,
      createLat: Float64Array.from(createLat).sort(),
      failures,
      cpuMs: {
        planes: cpu1.planes - cpu0.planes,
        agents: cpu1.agents - cpu0.agents,
        callers: (self.user + self.system) / 1000,
      },
    };
  } finally {
    for (const f of followers) f.close();
    agent.destroy();
  }
}

/** Instances and claims left in `schema`; then drops it and its `_api` schema. */
async function countLeftAndDrop(pgUrl: string, schema: string): Promise<number> {
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  try {
    const s = c.escapeIdentifier(schema);
    let left = -1;
    try {
      const r = await c.query<{ n: string }>(
        `select (select count(*) from ${s}.instances) + (select count(*) from ${s}.claims) as n`,
      );
      left = Number(r.rows[0]?.n ?? 0);
    } catch (e) {
      console.error(`could not count the rows left in ${schema}: ${String(e)}`);
    }
    await c.query(`drop schema if exists ${s} cascade`);
    await c.query(`drop schema if exists ${c.escapeIdentifier(`${schema}_api`)} cascade`);
    return left;
  } finally {
    await c.end();
  }
}

/** Runs `fn`, then every cleanup in reverse order (each one's failure printed, none skipped). */
async function withCleanups<T>(fn: (cleanups: Array<() => Promise<unknown>>) => Promise<T>): Promise<T> {
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    return await fn(cleanups);
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        console.error(`cleanup failed: ${String(e)}`);
      }
    }
  }
}

/** 2 control-plane processes and the agent processes, pairs through both planes. */
async function measureClusterPairs(o: PairsOptions): Promise<PairsRun> {
  const schema = `bench_cluster_${o.tag}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'nlfs-bench-cluster-'));
  const hostIds = Array.from({ length: o.agentCount }, (_, i) => `bc${o.tag}-h${i}`);
  let left = -1;
  const run = await withCleanups(async (cleanups) => {
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    cleanups.push(async () => {
      left = await countLeftAndDrop(o.pgUrl, schema);
    });
    const groups: AgentGroup[] = [];
    cleanups.push(() => Promise.all(groups.map((g) => g.stop())));
    const started = Date.now();
    for (let i = 0; i < hostIds.length; i += o.agentsPerProcess * 2) {
      // two processes at a time: tsx start-up is CPU-bound
      const pair = [
        hostIds.slice(i, i + o.agentsPerProcess),
        hostIds.slice(i + o.agentsPerProcess, i + 2 * o.agentsPerProcess),
      ];
      groups.push(
        ...(await Promise.all(
          pair
            .filter((ids) => ids.length > 0)
            .map((ids) =>
              startAgentGroup({
                natsUrl: o.natsUrl,
                stateRoot: join(dataDir, 'agents'),
                hostIds: ids,
                heartbeatMs: 1000,
              }),
            ),
        )),
      );
    }
    console.error(
      `cluster: ${hostIds.length} agents in ${groups.length} processes ready after ${Date.now() - started} ms`,
    );
    const services: ServeProcess[] = [];
    cleanups.push(() => Promise.all(services.map((s) => s.stop())));
    const args = controlPlaneArgs({
      dataDir,
      adminPassword: ADMIN_PASSWORD,
      pgUrl: o.pgUrl,
      pgSchema: schema,
      natsUrl: o.natsUrl,
      agentHosts: hostIds,
      hostDownAfterMs: 30_000,
    });
    // the first creates the schemas and seeds the flavors; the second joins them
    for (let i = 0; i < 2; i++) services.push(await startServe(args, await freeLoopbackPort(), 180_000));
    console.error(`cluster: 2 control planes ready after ${Date.now() - started} ms`);
    const { planes, imageId } = await prepare(services);
    return runPairs(planes, imageId, o, () => ({
      planes: services.reduce((n, s) => n + processCpuMs(s.pid), 0),
      agents: groups.reduce((n, g) => n + processCpuMs(g.pid), 0),
    }));
  });
  return { ...run, left };
}

/** One `serve --store postgres --fake-hosts N` process, pairs through it. */
async function measureSingleProcessPairs(o: PairsOptions): Promise<PairsRun> {
  const schema = `bench_single_${o.tag}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'nlfs-bench-single-'));
  let left = -1;
  const run = await withCleanups(async (cleanups) => {
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    cleanups.push(async () => {
      left = await countLeftAndDrop(o.pgUrl, schema);
    });
    const service = await startServe(
      [
        '--data-dir',
        dataDir,
        '--admin-password',
        ADMIN_PASSWORD,
        '--store',
        'postgres',
        '--pg-url',
        o.pgUrl,
        '--pg-schema',
        schema,
        '--fake-hosts',
        String(o.agentCount),
        '--log-level',
        'warn',
        '--rate-limit',
        '0',
      ],
      await freeLoopbackPort(),
      180_000,
    );
    cleanups.push(() => service.stop());
    const { planes, imageId } = await prepare([service]);
    return runPairs(planes, imageId, o, () => ({ planes: processCpuMs(service.pid), agents: 0 }));
  });
  return { ...run, left };
}

// run as a child process of this benchmark
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--simulate-heartbeats') {
    const [natsUrl, bucket, count, interval] = process.argv.slice(3);
    await simulateHeartbeats(natsUrl!, bucket!, Number(count), Number(interval));
  } else if (process.argv[2] === '--agent-group') {
    const [natsUrl, stateRoot, heartbeatMs, hostIds] = process.argv.slice(3);
    await runAgentGroup(natsUrl!, stateRoot!, Number(heartbeatMs), hostIds!.split(','));
  }
}
