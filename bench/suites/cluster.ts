import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AgentService, bindHostLiveness, RemoteDriver } from '@nova-lfs/agent';
import {
  BusEventSubscriber,
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
import { type ComputeDriver, createCompute } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { openPostgresStores } from '@nova-lfs/store-sql';
import pg from 'pg';
import { percentile, printReport } from '../report.js';

/**
 * `pnpm bench cluster [--rpc-calls N] [--sim-agents N] [--heartbeat-ms MS] [--down-after-ms MS]
 *  [--agents N] [--concurrency N] [--seconds S] [--skip-liveness]`: issue 13's cluster figures,
 * measured for real against the nats-server at `NOVA_LFS_NATS_URL` (default
 * nats://127.0.0.1:4222) and the PostgreSQL at `NOVA_LFS_PG_URL`:
 *
 * 1. RPC round trip of a trivial method on a `BusRpcServer` (client and server on two
 *    connections, calls one after another).
 * 2. Liveness at scale: a child process plays N agents (default 10,000) heartbeating every
 *    `--heartbeat-ms` (default 10 s) by writing their keys (the agents' own heartbeat envelopes)
 *    into a bucket of the run's own from one connection, spread evenly over the interval; this
 *    process runs only a `HostLiveness` over that bucket, and its CPU over the window is the
 *    control plane's CPU for liveness. One simulated host goes silent; the time from its last
 *    stored beat to `HostLiveness` marking it down, over `downAfterMs`, is the detection figure.
 * 3. Pairs end to end: one engine (one control plane, in this process) on PostgreSQL (fresh
 *    schema, dropped after) whose hosts are `RemoteDriver`s to in-process `AgentService`s (fake
 *    driver, zero latency; all agents on one connection of their own), with `HostLiveness` +
 *    `bindHostLiveness`; `--concurrency` callers create+delete for `--seconds`; then the same
 *    with local `FakeDriver`s on a second fresh schema of the same PostgreSQL, and the ratio.
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
  const agentCount = Math.min(100, Number(opt('agents', '20')));
  const concurrency = Number(opt('concurrency', '32'));
  const seconds = Number(opt('seconds', '15'));
  const skipLiveness = args.includes('--skip-liveness');
  const tag = `${process.pid}${randomUUID().slice(0, 4)}`;

  const rpc = await measureRpc(natsUrl, rpcCalls, tag);
  const live = skipLiveness
    ? undefined
    : await measureLiveness(natsUrl, { simAgents, heartbeatMs, downAfterMs, tag });
  const pairsOpts = { pgUrl, natsUrl, agentCount, concurrency, seconds, tag };
  const clusterRun = await measurePairs({ ...pairsOpts, remote: true });
  const single = await measurePairs({ ...pairsOpts, remote: false });

  const clusterPps = Math.round(clusterRun.pairs / clusterRun.seconds);
  const singlePps = Math.round(single.pairs / single.seconds);
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return printReport(
    'cluster',
    {
      nats: `${natsUrl} (nats-server, JetStream)`,
      postgres: `${pgUrl.replace(/:[^:@/]*@/, ':***@')} schemas bench_cluster_${tag}_r / _l (dropped after)`,
      rpc: `${rpc.calls} calls of a trivial echo method on a BusRpcServer, one after another, client and server on two connections, after 200 warm-up calls`,
      liveness: live
        ? `${simAgents} simulated agents (a child process putting each agent's heartbeat envelope in a bucket of the run's own from one connection, ${heartbeatMs} ms apart per key, spread evenly), one HostLiveness (downAfterMs ${downAfterMs}, sweep ${live.checkIntervalMs} ms) alone in this process; CPU over ${Math.round(live.windowMs / 1000)} s after every agent had beaten once; ${live.beatsSeen} hosts up at its end`
        : 'skipped (--skip-liveness)',
      controlPlanes:
        '1 (one engine in this process; the issue asks for 2 control-plane processes: not measured here)',
      agents: `${agentCount} AgentServices in this process (FakeDriver, zero latency, one NATS connection for all), each a RemoteDriver host of the engine, HostLiveness + bindHostLiveness on`,
      pairs: `${concurrency} concurrent callers doing create+delete for ${seconds} s each run (after 100 warm-up pairs); single-process: the same with local FakeDrivers on the same PostgreSQL, measured after the cluster run`,
      store: 'PostgreSQL over loopback (openPostgresStores, batching on)',
      note: 'store-sql was being tuned and other jobs were running on this machine while measured',
    },
    {
      rpcP50Ms: { value: r3(rpc.p50), unit: 'ms' },
      rpcP99Ms: { value: r3(rpc.p99), unit: 'ms', target: { op: '<=', value: 5 } },
      ...(live
        ? {
            livenessCpuPercentOfCore: {
              value: Math.round(live.cpuPercent * 10) / 10,
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
      clusterPairsPerSecond: { value: clusterPps, unit: 'pairs/s' },
      clusterPairs: { value: clusterRun.pairs, unit: 'pairs' },
      createToActiveP99Ms: { value: r3(percentile(clusterRun.createLat, 99)), unit: 'ms (cluster)' },
      createToActiveP50Ms: { value: r3(percentile(clusterRun.createLat, 50)), unit: 'ms (cluster)' },
      singleProcessPairsPerSecond: { value: singlePps, unit: 'pairs/s' },
      singleProcessPairs: { value: single.pairs, unit: 'pairs' },
      singleProcessCreateToActiveP99Ms: {
        value: r3(percentile(single.createLat, 99)),
        unit: 'ms (single process)',
      },
      clusterOverSingleProcess: {
        value: Math.round((clusterPps / singlePps) * 100) / 100,
        unit: 'x',
        target: { op: '>=', value: 0.5 },
      },
      clusterCpuPerPair: {
        value: Math.round(clusterRun.cpuUs / clusterRun.pairs),
        unit: 'µs (this process: engine + agents + bus clients)',
      },
      singleProcessCpuPerPair: { value: Math.round(single.cpuUs / single.pairs), unit: 'µs' },
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

interface PairsRun {
  readonly pairs: number;
  readonly seconds: number;
  readonly createLat: Float64Array;
  readonly cpuUs: number;
  readonly failures: number;
  readonly left: number;
}

async function measurePairs(o: {
  pgUrl: string;
  natsUrl: string;
  agentCount: number;
  concurrency: number;
  seconds: number;
  tag: string;
  remote: boolean;
}): Promise<PairsRun> {
  const schema = `bench_cluster_${o.tag}_${o.remote ? 'r' : 'l'}`;
  const stores = await openPostgresStores({
    url: o.pgUrl,
    schema,
    poolSize: o.concurrency + 2,
    batching: true,
  });
  const fakeOf = () => new FakeDriver({ vcpus: 64, ramMb: 262_144 });
  const hostIds = Array.from({ length: o.agentCount }, (_, i) => `bench-${o.tag}-h${i}`);
  const stateRoot = mkdtempSync(join(tmpdir(), 'nlfs-bench-cluster-'));
  const logger = quietLogger();
  const bucket = `bench_cluster_hosts_${o.tag}`;
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  try {
    let drivers: Map<string, ComputeDriver>;
    let remoteDrivers: Map<string, RemoteDriver> | undefined;
    let liveness: HostLiveness | undefined;
    if (o.remote) {
      const cpNc = await connectBus({ servers: o.natsUrl, name: 'bench-control-plane' });
      const agentNc = await connectBus({ servers: o.natsUrl, name: 'bench-agents' });
      cleanups.push(
        () => agentNc.close(),
        () => cpNc.close(),
      );
      liveness = new HostLiveness(cpNc, { downAfterMs: 30_000, bucket, logger });
      await liveness.start();
      cleanups.push(async () => {
        liveness!.stop();
        const kv = await ensureHostsBucket(cpNc, 30_000, bucket).catch(() => undefined);
        await kv?.destroy().catch(() => undefined);
      });
      const agents = hostIds.map(
        (hostId) =>
          new AgentService(agentNc, {
            hostId,
            driver: fakeOf(),
            stateDir: join(stateRoot, hostId),
            heartbeatBucket: bucket,
            logger,
          }),
      );
      await Promise.all(agents.map((a) => a.start()));
      cleanups.push(() => Promise.all(agents.map((a) => a.stop())));
      const client = new BusRpcClient(cpNc, { senderId: `bench-cp-${o.tag}`, logger });
      const subscriber = new BusEventSubscriber(cpNc, { logger });
      cleanups.push(() => client.close());
      remoteDrivers = new Map(
        await Promise.all(
          hostIds.map(
            async (hostId) =>
              [hostId, await RemoteDriver.connect({ hostId, client, subscriber, logger })] as const,
          ),
        ),
      );
      cleanups.push(() => Promise.all([...remoteDrivers!.values()].map((d) => d.close())));
      drivers = remoteDrivers;
    } else {
      drivers = new Map(hostIds.map((id) => [id, fakeOf()]));
    }
    const compute = await createCompute({
      stores: stores.stores,
      quota: stores.quota,
      flavors: [{ id: 'm1', vcpus: 1, ramMb: 512 }],
      hosts: hostIds.map((id) => ({ id, driver: drivers.get(id)! })),
    });
    cleanups.push(() => compute.close());
    if (liveness) {
      const binding = bindHostLiveness(compute, liveness, { drivers: remoteDrivers!, logger });
      cleanups.push(() => binding.stop());
      await binding.settled();
    }
    await stores.quota.setLimits('bench', { instances: -1, cores: -1, ramMb: -1 });
    await compute.images.import(
      { id: 'img', name: 'img', diskFormat: 'raw' },
      { kind: 'bytes', bytes: new Uint8Array([1, 2, 3]) },
    );
    const req = { name: 'bench', projectId: 'bench', userId: 'bench', flavorId: 'm1', imageId: 'img' };
    for (let i = 0; i < 100; i++) {
      const [vm] = await compute.create(req);
      await compute.delete(vm!.id);
    }
    const createLat: number[] = [];
    let pairs = 0;
    let failures = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + o.seconds * 1000;
    const worker = async () => {
      while (performance.now() < end) {
        const a = performance.now();
        try {
          const [vm] = await compute.create(req);
          if (vm!.vmState !== 'active') {
            failures++;
            if (failures <= 3) console.error(`create not active: ${vm!.vmState} ${vm!.fault?.message}`);
            await compute.delete(vm!.id).catch(() => undefined);
            continue;
          }
          createLat.push(performance.now() - a);
          await compute.delete(vm!.id);
          pairs++;
        } catch (e) {
          failures++;
          if (failures <= 3) console.error(`pair failed: ${String(e)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const lat = Float64Array.from(createLat).sort();
    const left = (await stores.stores.instances.list()).length + (await stores.claims.list()).length;
    return { pairs, seconds, createLat: lat, cpuUs: cpu.user + cpu.system, failures, left };
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        console.error(`cleanup failed: ${String(e)}`);
      }
    }
    await stores.close();
    const c = new pg.Client({ connectionString: o.pgUrl });
    await c.connect();
    await c.query(`drop schema if exists "${schema}" cascade`);
    await c.end();
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

// run as the heartbeat simulator's child process
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === '--simulate-heartbeats') {
  const [natsUrl, bucket, count, interval] = process.argv.slice(3);
  await simulateHeartbeats(natsUrl!, bucket!, Number(count), Number(interval));
}
