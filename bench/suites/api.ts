import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { ApiServer } from '@nova-lfs/api';
import type { ComputeEngine } from '@nova-lfs/core';
import { percentile, printReport } from '../report.js';
import { call, type Endpoint, EventFollower, request } from '../rest-client.js';

/** The worker thread that plays the HTTP clients is this module, told so by its `workerData`. */
const CLIENT_ROLE = 'nova-lfs-bench-api-client';

/** What the client thread is asked to do. */
type ClientTask =
  | {
      readonly kind: 'pairs';
      readonly endpoint: Endpoint;
      /** Project member token: creates and deletes. */
      readonly token: string;
      /** Admin token: the one shared event stream. */
      readonly eventsToken: string;
      /** `POST /v2.1/servers` body. */
      readonly body: string;
      readonly seconds: number;
      readonly concurrency: number;
    }
  | {
      readonly kind: 'tokens';
      readonly endpoint: Endpoint;
      /** `POST /v3/auth/tokens` bodies, taken in turn. */
      readonly bodies: readonly string[];
      /** Run for this long, or (when 0) send each body once. */
      readonly seconds: number;
      readonly concurrency: number;
    }
  | {
      readonly kind: 'gets';
      readonly endpoint: Endpoint;
      readonly token: string;
      readonly path: string;
      readonly count: number;
    };

/** What the client thread answers. */
interface ClientResult {
  /** Completed operations (pairs, tokens or GETs). */
  readonly done: number;
  readonly seconds: number;
  /** Per operation latency (ms): a pair from POST to its deleted event, a token, a GET. */
  readonly latMs: number[];
  /** Pairs: POST sent to the ACTIVE event received (ms). */
  readonly toActiveMs: number[];
  /** Pairs: event frames read from the stream. */
  readonly frames: number;
  /** GETs: servers in each answer. */
  readonly items: number[];
  /** GETs: bytes of each answer. */
  readonly bytes: number[];
  /** The client thread's event-loop utilization during the task (0-1). */
  readonly elu: number;
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === CLIENT_ROLE) {
  parentPort!.on('message', (task: ClientTask) => {
    runClientTask(task).then(
      (result) => parentPort!.postMessage({ ok: true, result }),
      (e: unknown) => parentPort!.postMessage({ ok: false, error: String((e as Error)?.stack ?? e) }),
    );
  });
}

/**
 * `pnpm bench api [--seconds N] [--engine-seconds N] [--token-seconds N] [--warmup N] [--hosts N]
 * [--concurrency N] [--servers N] [--detail-requests N] [--client worker|inline]`: the REST API
 * (`createApiServer`) in this process over an engine with FAKE hosts (zero latency) and the SQLite
 * store, an API database on SQLite, listening on 127.0.0.1 and driven over real HTTP/1.1 with
 * keep-alive (node:http agents; Node 20's fetch exposes no undici Agent to size the pool). The
 * clients run in a worker thread of this process by default (a client is another program; on one
 * event loop client and server would share a core), `--client inline` puts them on the server's
 * thread.
 * Measured in one run: create+delete pairs through the API, each waiting for ACTIVE and then for
 * the deletion on one shared admin event stream (`GET /v2.1/events`); the same pairs through the
 * engine directly (the baseline, ratio printed); tokens issued per second with a password whose
 * verification the identity service remembers (and the scrypt-bound rate of first logins); the
 * cost of validating a token; `GET /v2.1/servers/detail?limit=1000` with 10,000 servers in the
 * project. Targets (issue 12): >= 1,000 pairs/s with 32 clients, detail p99 <= 50 ms,
 * >= 1,000 tokens/s.
 */
export default async function apiBench(args: string[]): Promise<boolean> {
  const opt = (name: string, dflt: string): string => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? (args[i + 1] ?? dflt) : dflt;
  };
  const seconds = Number(opt('seconds', '30'));
  const engineSeconds = Number(opt('engine-seconds', '15'));
  const tokenSeconds = Number(opt('token-seconds', '10'));
  const warmup = Number(opt('warmup', '3'));
  const serverCount = Number(opt('servers', '10000'));
  // the production scheduler's MaxInstances filter admits 50 instances per host (Nova's default)
  const hostCount = Number(opt('hosts', String(Math.max(100, Math.ceil((serverCount * 1.25) / 50)))));
  const concurrency = Number(opt('concurrency', '32'));
  const detailRequests = Number(opt('detail-requests', '50'));
  const clientMode = opt('client', 'worker') === 'inline' ? 'inline' : 'worker';

  // loaded here, not at the top: the client thread imports this module too and needs none of it
  const { createApiServer } = await import('@nova-lfs/api');
  const { createCompute } = await import('@nova-lfs/core');
  const { FakeDriver } = await import('@nova-lfs/core/testing');
  const { openKyselySqlite } = await import('@nova-lfs/store-sql');

  const dir = mkdtempSync(join(tmpdir(), 'nlfs-bench-api-'));
  const adminPassword = 'bench-admin-secret';
  const engine = await createCompute({
    storage: { kind: 'sqlite', dataDir: dir },
    imageDir: join(dir, 'images'),
    flavors: [{ id: '1', name: 'm1.tiny', vcpus: 1, ramMb: 512, diskGb: 1 }],
    hosts: Array.from({ length: hostCount }, (_, i) => ({
      id: `h${i}`,
      driver: new FakeDriver({ hostname: `h${i}`, vcpus: 1024, ramMb: 1024 * 1024, diskGb: 100_000 }),
    })),
  });
  // the API's own database as nova-lfs serve opens it: better-sqlite3 + Kysely (WAL, statements
  // prepared once), from store-sql (the bench may not import kysely itself)
  const apiDb = openKyselySqlite(join(dir, 'api.sqlite'));
  const server = await createApiServer({
    engine,
    db: apiDb,
    publicUrl: 'http://127.0.0.1:0',
    adminPassword,
  });
  await server.listen('127.0.0.1', 0);
  const address = server.app.server.address();
  if (!address || typeof address === 'string') throw new Error('no listening address');
  const endpoint: Endpoint = { host: '127.0.0.1', port: address.port };
  const client = clientMode === 'worker' ? await startClientThread() : inlineClient();

  try {
    const setup = await setUp(endpoint, adminPassword, engine);
    const { projectId, memberToken, adminToken, imageId } = setup;

    // ---- tokens: POST /v3/auth/tokens, password remembered after its first scrypt check
    const tokenBody = JSON.stringify(passwordAuth(setup.userName, setup.password, projectId));
    await measured(client, {
      kind: 'tokens',
      endpoint,
      bodies: [tokenBody],
      seconds: Math.min(warmup, 2),
      concurrency,
    });
    const tokens = await measured(client, {
      kind: 'tokens',
      endpoint,
      bodies: [tokenBody],
      seconds: tokenSeconds,
      concurrency,
    });
    // first logins of users nobody logged in as: one scrypt each
    const cold = await coldLogins(endpoint, adminToken, projectId, setup.memberRoleId, 16);
    const coldRun = await measured(client, {
      kind: 'tokens',
      endpoint,
      bodies: cold,
      seconds: 0,
      concurrency: cold.length,
    });
    const validation = await validationCost(server.identity, setup.userName, setup.password, projectId, 2000);

    // ---- create+delete pairs through the API
    const body = JSON.stringify({ server: { name: 'bench', imageRef: imageId, flavorRef: '1' } });
    const pairsTask = {
      kind: 'pairs',
      endpoint,
      token: memberToken,
      eventsToken: adminToken,
      body,
      concurrency,
    };
    await measured(client, { ...pairsTask, seconds: warmup } as ClientTask);
    const apiPairs = await measured(client, { ...pairsTask, seconds } as ClientTask);
    const leftAfterApi = (await engine.list({ projectId })).length;

    // ---- the same pairs through the engine directly (the baseline)
    const enginePairs = await engineRun(engine, {
      name: 'bench',
      projectId,
      userId: setup.userId,
      flavorId: '1',
      imageId,
      seconds: engineSeconds,
      warmup,
      concurrency,
    });
    const leftAfterEngine = (await engine.list({ projectId })).length;

    // ---- GET /servers/detail?limit=1000 with 10,000 servers in the project
    const t0 = performance.now();
    await fill(engine, { projectId, userId: setup.userId, imageId, count: serverCount, concurrency });
    const fillSeconds = (performance.now() - t0) / 1000;
    const detailPath = '/v2.1/servers/detail?limit=1000';
    await measured(client, { kind: 'gets', endpoint, token: memberToken, path: detailPath, count: 5 });
    const detail = await measured(client, {
      kind: 'gets',
      endpoint,
      token: memberToken,
      path: detailPath,
      count: detailRequests,
    });
    const detailAdmin = await measured(client, {
      kind: 'gets',
      endpoint,
      token: adminToken,
      path: `${detailPath}&all_tenants=1`,
      count: Math.min(detailRequests, 20),
    });
    const flavorGets = await measured(client, {
      kind: 'gets',
      endpoint,
      token: memberToken,
      path: '/v2.1/flavors',
      count: 500,
    });

    const ms = (x: number) => Math.round(x * 100) / 100;
    const apiRate = Math.round(apiPairs.result.done / apiPairs.result.seconds);
    const engineRate = Math.round(enginePairs.pairs / enginePairs.seconds);
    const tokensRate = Math.round(tokens.result.done / tokens.result.seconds);
    const perPairCpu = (r: Measured) => Math.round((r.cpu.user + r.cpu.system) / Math.max(1, r.result.done));
    return printReport(
      'api',
      {
        server: 'createApiServer in this process (Fastify), listening on 127.0.0.1, no logger, no rate limit',
        engine: `createCompute, SQLite store (${join(dir, 'nova-lfs.sqlite')}), @nova-lfs/scheduler`,
        apiDatabase: 'SQLite (better-sqlite3 + Kysely SqliteDialect, WAL) in the same tmp dir',
        hosts: `${hostCount} FakeDriver, zero latency, 1,024 vCPU / 1 TiB RAM each (the scheduler admits 50 instances per host)`,
        clients:
          clientMode === 'worker'
            ? `HTTP/1.1 keep-alive (node:http Agent, ${concurrency + 8} sockets) from a worker thread of this process`
            : `HTTP/1.1 keep-alive (node:http Agent, ${concurrency + 8} sockets) on the server's own thread`,
        pairs: `${concurrency} clients for ${seconds} s after ${warmup} s warm-up: POST /v2.1/servers (member token, microversion 2.1), wait for ACTIVE, DELETE, wait for the deletion; events from one admin GET /v2.1/events stream`,
        enginePairs: `compute.create + compute.delete from ${concurrency} callers for ${engineSeconds} s, same engine and project, after the API run`,
        tokens: `POST /v3/auth/tokens (password, project scope, with catalog) from ${concurrency} clients for ${tokenSeconds} s, one user`,
        detail: `GET ${detailPath} as the project member, ${detailRequests} requests one at a time, ${serverCount.toLocaleString('en-US')} servers in the project (created through the engine in ${ms(fillSeconds)} s)`,
      },
      {
        createDeletePairsPerSecond: {
          value: apiRate,
          unit: 'pairs/s',
          target: { op: '>=', value: 1_000 },
        },
        createToActiveP50Ms: { value: ms(percentile(apiPairs.result.toActiveMs, 50)), unit: 'ms' },
        createToActiveP99Ms: { value: ms(percentile(apiPairs.result.toActiveMs, 99)), unit: 'ms' },
        pairP99Ms: { value: ms(percentile(apiPairs.result.latMs, 99)), unit: 'ms (POST to deleted event)' },
        enginePairsPerSecond: { value: engineRate, unit: 'pairs/s (engine directly)' },
        apiOverEngine: { value: Math.round((apiRate / engineRate) * 1000) / 1000, unit: 'x' },
        enginePairP99Ms: { value: ms(percentile(enginePairs.lat, 99)), unit: 'ms' },
        cpuPerApiPair: {
          value: perPairCpu(apiPairs),
          unit: 'µs of process CPU (server + clients) per pair',
        },
        cpuPerEnginePair: {
          value: Math.round((enginePairs.cpu.user + enginePairs.cpu.system) / enginePairs.pairs),
          unit: 'µs of process CPU per pair',
        },
        serverLoopUtilization: {
          value: Math.round(apiPairs.serverElu * 100) / 100,
          unit: `of the server thread busy during the API pairs (clients: ${Math.round(apiPairs.result.elu * 100) / 100})`,
        },
        eventFramesPerPair: {
          value: Math.round((apiPairs.result.frames / Math.max(1, apiPairs.result.done)) * 10) / 10,
          unit: 'SSE frames',
        },
        serversLeftAfterPairs: {
          value: leftAfterApi + leftAfterEngine,
          unit: 'servers (API and engine runs)',
          target: { op: '<=', value: 0 },
        },
        serversDetailP50Ms: { value: ms(percentile(detail.result.latMs, 50)), unit: 'ms' },
        serversDetailP99Ms: {
          value: ms(percentile(detail.result.latMs, 99)),
          unit: `ms (${detail.result.items[0] ?? 0} servers, ${Math.round((detail.result.bytes[0] ?? 0) / 1024)} KiB per answer)`,
          target: { op: '<=', value: 50 },
        },
        serversDetailCpuMs: {
          value: ms((detail.cpu.user + detail.cpu.system) / 1000 / detail.result.done),
          unit: 'ms of process CPU per request (server + client parse; insensitive to other load)',
        },
        serversDetailAdminP99Ms: {
          value: ms(percentile(detailAdmin.result.latMs, 99)),
          unit: 'ms (admin, all_tenants=1: host names and status too)',
        },
        tokensPerSecond: {
          value: tokensRate,
          unit: 'tokens/s (password verification remembered)',
          target: { op: '>=', value: 1_000 },
        },
        tokenP99Ms: { value: ms(percentile(tokens.result.latMs, 99)), unit: 'ms' },
        coldTokensPerSecond: {
          value: Math.round(coldRun.result.done / coldRun.result.seconds),
          unit: `tokens/s (${cold.length} first logins at once: one scrypt N=16384 each)`,
        },
        tokenValidationUs: {
          value: validation.missUs,
          unit: 'µs (identity.validate of a token not seen before: HMAC, revocations, user, domain, roles)',
        },
        cachedTokenValidationUs: {
          value: validation.hitUs,
          unit: 'µs (identity.validate answered from the validation cache)',
        },
        tokenIssueUs: {
          value: validation.issueUs,
          unit: 'µs (identity.issue in process, password remembered)',
        },
        flavorsGetP50Ms: {
          value: ms(percentile(flavorGets.result.latMs, 50)),
          unit: 'ms (GET /v2.1/flavors, cached token: the floor of a request)',
        },
      },
    );
  } finally {
    await client.close();
    await server.close();
    await engine.close();
    await apiDb.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- setup --------------------------------------------------------------------------------------

/** What the setup made: a project with a member, their tokens, an image. */
interface Setup {
  readonly projectId: string;
  readonly userId: string;
  readonly userName: string;
  readonly password: string;
  readonly memberRoleId: string;
  readonly memberToken: string;
  readonly adminToken: string;
  readonly imageId: string;
}

function passwordAuth(name: string, password: string, projectId?: string): Record<string, unknown> {
  return {
    auth: {
      identity: { methods: ['password'], password: { user: { name, domain: { id: 'default' }, password } } },
      ...(projectId ? { scope: { project: { id: projectId } } } : {}),
    },
  };
}

/**
 * Over the API, as the bootstrap admin: a project with unlimited compute quota and a member user
 * in it, then that user's project token from a real `POST /v3/auth/tokens`; an image through the
 * engine (the FAKE hosts need no bytes).
 */
async function setUp(endpoint: Endpoint, adminPassword: string, engine: ComputeEngine): Promise<Setup> {
  const admin = await call(
    endpoint,
    'POST',
    '/v3/auth/tokens',
    undefined,
    passwordAuth('admin', adminPassword),
    201,
  );
  let adminToken = admin.headers.get('x-subject-token')!;
  const adminProject = await call(endpoint, 'GET', '/v3/auth/projects', adminToken, undefined, 200);
  const adminProjectId = (adminProject.json.projects as { id: string; name: string }[]).find(
    (p) => p.name === 'admin',
  )!.id;
  const scoped = await call(
    endpoint,
    'POST',
    '/v3/auth/tokens',
    undefined,
    passwordAuth('admin', adminPassword, adminProjectId),
    201,
  );
  adminToken = scoped.headers.get('x-subject-token')!;
  const project = await call(
    endpoint,
    'POST',
    '/v3/projects',
    adminToken,
    { project: { name: 'bench', domain_id: 'default', enabled: true } },
    201,
  );
  const projectId = (project.json.project as { id: string }).id;
  const userName = 'bench-member';
  const password = 'bench-member-secret';
  const user = await call(
    endpoint,
    'POST',
    '/v3/users',
    adminToken,
    { user: { name: userName, password, domain_id: 'default', default_project_id: projectId } },
    201,
  );
  const userId = (user.json.user as { id: string }).id;
  const roles = await call(endpoint, 'GET', '/v3/roles?name=member', adminToken, undefined, 200);
  const memberRoleId = (roles.json.roles as { id: string }[])[0]!.id;
  await call(
    endpoint,
    'PUT',
    `/v3/projects/${projectId}/users/${userId}/roles/${memberRoleId}`,
    adminToken,
    undefined,
    204,
  );
  await call(
    endpoint,
    'PUT',
    `/v2.1/os-quota-sets/${projectId}`,
    adminToken,
    { quota_set: { instances: -1, cores: -1, ram: -1 } },
    200,
  );
  const member = await call(
    endpoint,
    'POST',
    '/v3/auth/tokens',
    undefined,
    passwordAuth(userName, password, projectId),
    201,
  );
  const memberToken = member.headers.get('x-subject-token')!;
  const imageId = 'bench-image';
  await engine.images.register(
    { id: imageId, name: 'bench-image', diskFormat: 'raw', sha256: '3'.repeat(64) },
    { kind: 'bytes', bytes: new Uint8Array() },
  );
  return { projectId, userId, userName, password, memberRoleId, memberToken, adminToken, imageId };
}

/** Makes `n` members of the project nobody logged in as yet; returns their login bodies. */
async function coldLogins(
  endpoint: Endpoint,
  adminToken: string,
  projectId: string,
  memberRoleId: string,
  n: number,
): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const name = `bench-cold-${i}`;
      const password = `bench-cold-secret-${i}`;
      const user = await call(
        endpoint,
        'POST',
        '/v3/users',
        adminToken,
        { user: { name, password, domain_id: 'default' } },
        201,
      );
      const id = (user.json.user as { id: string }).id;
      await call(
        endpoint,
        'PUT',
        `/v3/projects/${projectId}/users/${id}/roles/${memberRoleId}`,
        adminToken,
        undefined,
        204,
      );
      return JSON.stringify(passwordAuth(name, password, projectId));
    }),
  );
}

/**
 * In process: `identity.issue` with a remembered password, then `identity.validate` of each new
 * token once (a miss: the validation cache has never seen it) and once more (a hit). µs each.
 */
async function validationCost(
  identity: ApiServer['identity'],
  name: string,
  password: string,
  projectId: string,
  n: number,
): Promise<{ issueUs: number; missUs: number; hitUs: number }> {
  const auth = (passwordAuth(name, password, projectId) as { auth: Parameters<typeof identity.issue>[0] })
    .auth;
  await identity.issue(auth);
  const issued: string[] = [];
  let t = performance.now();
  for (let i = 0; i < n; i++) issued.push((await identity.issue(auth)).token);
  const issueUs = ((performance.now() - t) * 1000) / n;
  t = performance.now();
  for (const token of issued) await identity.validate(token);
  const missUs = ((performance.now() - t) * 1000) / n;
  t = performance.now();
  for (const token of issued) await identity.validate(token);
  const hitUs = ((performance.now() - t) * 1000) / n;
  const r = (x: number) => Math.round(x * 10) / 10;
  return { issueUs: r(issueUs), missUs: r(missUs), hitUs: r(hitUs) };
}

// ---- engine runs --------------------------------------------------------------------------------

/** Create+delete pairs through the engine for `seconds` (after `warmup` s), `concurrency` callers. */
async function engineRun(
  engine: ComputeEngine,
  o: {
    name: string;
    projectId: string;
    userId: string;
    flavorId: string;
    imageId: string;
    seconds: number;
    warmup: number;
    concurrency: number;
  },
): Promise<{ pairs: number; seconds: number; lat: number[]; cpu: NodeJS.CpuUsage }> {
  const req = {
    name: o.name,
    projectId: o.projectId,
    userId: o.userId,
    flavorId: o.flavorId,
    imageId: o.imageId,
  };
  const loop = async (until: number, lat: number[] | undefined) => {
    while (performance.now() < until) {
      const a = performance.now();
      const [vm] = await engine.create(req);
      if (vm!.vmState !== 'active') throw new Error(`create failed: ${vm!.fault?.message}`);
      await engine.delete(vm!.id);
      lat?.push(performance.now() - a);
    }
  };
  const runFor = (s: number, lat: number[] | undefined) => {
    const until = performance.now() + s * 1000;
    return Promise.all(Array.from({ length: o.concurrency }, () => loop(until, lat)));
  };
  await runFor(o.warmup, undefined);
  (globalThis as { gc?: () => void }).gc?.();
  const lat: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await runFor(o.seconds, lat);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  lat.sort((a, b) => a - b);
  return { pairs: lat.length, seconds, lat, cpu };
}

/** Creates `count` ACTIVE servers in the project through the engine. */
async function fill(
  engine: ComputeEngine,
  o: { projectId: string; userId: string; imageId: string; count: number; concurrency: number },
): Promise<void> {
  let next = 0;
  const loop = async () => {
    while (next < o.count) {
      const i = next++;
      const [vm] = await engine.create({
        name: `detail-${i}`,
        projectId: o.projectId,
        userId: o.userId,
        flavorId: '1',
        imageId: o.imageId,
        metadata: { role: 'bench', index: String(i) },
      });
      if (vm!.vmState !== 'active') throw new Error(`create failed: ${vm!.fault?.message}`);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, loop));
}

// ---- the clients --------------------------------------------------------------------------------

/** Runs client tasks: in the worker thread or on this thread. */
interface Client {
  run(task: ClientTask): Promise<ClientResult>;
  close(): Promise<void>;
}

/** A client task's result with what the server's thread did meanwhile. */
interface Measured {
  readonly result: ClientResult;
  /** Process CPU during the task (both threads). */
  readonly cpu: NodeJS.CpuUsage;
  /** The main (server) thread's event-loop utilization during the task. */
  readonly serverElu: number;
}

async function measured(client: Client, task: ClientTask): Promise<Measured> {
  // each phase starts on a collected heap (the runner gives --expose-gc), not with the last one's garbage
  (globalThis as { gc?: () => void }).gc?.();
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const result = await client.run(task);
  const cpu = process.cpuUsage(cpu0);
  const serverElu = performance.eventLoopUtilization(elu0).utilization;
  return { result, cpu, serverElu };
}

function inlineClient(): Client {
  return { run: runClientTask, close: async () => undefined };
}

/** Starts this module in a worker thread (TypeScript through tsx's loader) as the client side. */
async function startClientThread(): Promise<Client> {
  const boot = `const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))});
register();
await import(${JSON.stringify(import.meta.url)});`;
  const worker = new Worker(boot, { eval: true, workerData: { role: CLIENT_ROLE } });
  let pending: { resolve: (r: ClientResult) => void; reject: (e: Error) => void } | undefined;
  worker.on('message', (m: { ok: boolean; result?: ClientResult; error?: string }) => {
    const p = pending;
    pending = undefined;
    if (m.ok) p?.resolve(m.result!);
    else p?.reject(new Error(`client thread: ${m.error}`));
  });
  worker.on('error', (e) => pending?.reject(e));
  await new Promise<void>((resolve, reject) => {
    worker.once('online', resolve);
    worker.once('error', reject);
  });
  return {
    run: (task) =>
      new Promise<ClientResult>((resolve, reject) => {
        pending = { resolve, reject };
        worker.postMessage(task);
      }),
    close: async () => {
      await worker.terminate();
    },
  };
}

/** The client side of one task (in the worker thread, or inline). */
async function runClientTask(task: ClientTask): Promise<ClientResult> {
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: (task.kind === 'gets' ? 1 : task.concurrency) + 8,
  });
  const elu0 = performance.eventLoopUtilization();
  try {
    const out =
      task.kind === 'pairs'
        ? await runPairs(task, agent)
        : task.kind === 'tokens'
          ? await runTokens(task, agent)
          : await runGets(task, agent);
    return { ...out, elu: performance.eventLoopUtilization(elu0).utilization };
  } finally {
    agent.destroy();
  }
}

type TaskOutput = Omit<ClientResult, 'elu'>;

async function runTokens(
  task: Extract<ClientTask, { kind: 'tokens' }>,
  agent: http.Agent,
): Promise<TaskOutput> {
  const latMs: number[] = [];
  let next = 0;
  const t0 = performance.now();
  const until = t0 + task.seconds * 1000;
  const more = () => (task.seconds > 0 ? performance.now() < until : next < task.bodies.length);
  const loop = async () => {
    while (more()) {
      const body = task.bodies[next++ % task.bodies.length]!;
      const a = performance.now();
      const r = await request(agent, task.endpoint, 'POST', '/v3/auth/tokens', undefined, body);
      if (r.status !== 201 || !r.headers['x-subject-token'])
        throw new Error(`POST /v3/auth/tokens answered ${r.status}: ${r.text.slice(0, 300)}`);
      latMs.push(performance.now() - a);
    }
  };
  await Promise.all(Array.from({ length: task.concurrency }, loop));
  const seconds = (performance.now() - t0) / 1000;
  latMs.sort((a, b) => a - b);
  return { done: latMs.length, seconds, latMs, toActiveMs: [], frames: 0, items: [], bytes: [] };
}

async function runGets(task: Extract<ClientTask, { kind: 'gets' }>, agent: http.Agent): Promise<TaskOutput> {
  const latMs: number[] = [];
  const items: number[] = [];
  const bytes: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < task.count; i++) {
    const a = performance.now();
    const r = await request(agent, task.endpoint, 'GET', task.path, task.token);
    latMs.push(performance.now() - a);
    if (r.status !== 200) throw new Error(`GET ${task.path} answered ${r.status}: ${r.text.slice(0, 300)}`);
    const json = JSON.parse(r.text) as { servers?: unknown[]; flavors?: unknown[] };
    items.push((json.servers ?? json.flavors ?? []).length);
    bytes.push(Buffer.byteLength(r.text));
  }
  const seconds = (performance.now() - t0) / 1000;
  latMs.sort((a, b) => a - b);
  return { done: latMs.length, seconds, latMs, toActiveMs: [], frames: 0, items, bytes };
}

async function runPairs(
  task: Extract<ClientTask, { kind: 'pairs' }>,
  agent: http.Agent,
): Promise<TaskOutput> {
  const events = new EventFollower();
  await events.open(task.endpoint, task.eventsToken);
  const latMs: number[] = [];
  const toActiveMs: number[] = [];
  const t0 = performance.now();
  const until = t0 + task.seconds * 1000;
  const loop = async () => {
    while (performance.now() < until) {
      const a = performance.now();
      const created = await request(agent, task.endpoint, 'POST', '/v2.1/servers', task.token, task.body);
      if (created.status !== 202)
        throw new Error(`POST /v2.1/servers answered ${created.status}: ${created.text.slice(0, 300)}`);
      const id = (JSON.parse(created.text) as { server: { id: string } }).server.id;
      await events.until(id, 'active');
      const b = performance.now();
      const deleted = await request(agent, task.endpoint, 'DELETE', `/v2.1/servers/${id}`, task.token);
      if (deleted.status !== 204)
        throw new Error(
          `DELETE /v2.1/servers/${id} answered ${deleted.status}: ${deleted.text.slice(0, 300)}`,
        );
      await events.until(id, 'deleted');
      toActiveMs.push(b - a);
      latMs.push(performance.now() - a);
    }
  };
  try {
    await Promise.all(Array.from({ length: task.concurrency }, loop));
  } finally {
    events.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  latMs.sort((a, b) => a - b);
  toActiveMs.sort((a, b) => a - b);
  return { done: latMs.length, seconds, latMs, toActiveMs, frames: events.frames, items: [], bytes: [] };
}
