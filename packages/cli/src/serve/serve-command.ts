import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createApiServer,
  type DirectoryDomain,
  type LdapBackendOptions,
  LdapIdentityBackend,
} from '@nova-lfs/api';
import {
  type ComputeEngine,
  ConfigurationError,
  createCompute,
  defaultEngineOptions,
  type EngineOptions,
  type HostBinding,
} from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { DockerDriver } from '@nova-lfs/driver-docker';
import { KvmDriver } from '@nova-lfs/driver-kvm';
import { LxcDriver } from '@nova-lfs/driver-lxc';
import { openKyselySqlite } from '@nova-lfs/store-sql';
import { LocalVolumeAdapter } from '@nova-lfs/volume-local';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { parse as parseYaml } from 'yaml';
import { type AgentHosts, connectAgentHosts } from './agent-hosts.js';
import { networkAdapterOf, type ServeOptions } from './serve-options.js';

/** Flavors a new cloud starts with (devstack's m1 sizes, Nova's integer ids). */
const starterFlavors = [
  { id: '1', name: 'm1.tiny', vcpus: 1, ramMb: 512, diskGb: 1 },
  { id: '2', name: 'm1.small', vcpus: 1, ramMb: 2048, diskGb: 20 },
  { id: '3', name: 'm1.medium', vcpus: 2, ramMb: 4096, diskGb: 40 },
  { id: '4', name: 'm1.large', vcpus: 4, ramMb: 8192, diskGb: 80 },
];

/** A running service: how to stop it. */
export interface RunningService {
  readonly url: string;
  readonly adminPassword: string;
  readonly engine: ComputeEngine;
  stop(): Promise<void>;
}

/** Where output goes (the command prints the OS_* variables there). */
export interface ServeOutput {
  print(line: string): void;
}

/**
 * Runs `nova-lfs serve`: opens the engine on the configured store with the configured hosts,
 * builds the API over it and listens. The admin password comes from the options, else from
 * `<data-dir>/admin-password`, else is generated, saved there (mode 0600) and printed once.
 */
export async function runServe(options: ServeOptions, out: ServeOutput): Promise<RunningService> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const logger = pino({
    level: options.logLevel,
    // tokens and passwords never reach a log line, whatever a serializer adds later
    redact: {
      paths: [
        'req.headers["x-auth-token"]',
        'req.headers["x-subject-token"]',
        'req.headers.authorization',
        'res.headers["x-subject-token"]',
        '*.password',
        '*.adminPassword',
        '*.bindPassword',
      ],
      censor: '[redacted]',
    },
  });
  const { password, generated } = adminPasswordOf(options);
  // the API's database is made first: whether it is new says whether this is the cloud's first start
  const { db, fresh: firstStart } = await apiDatabase(options);
  const engineOptions = engineOptionsOf(options);
  let agents: AgentHosts | undefined;
  if (options.bus === 'nats') {
    agents = await connectAgentHosts(options, engineOptions.timeouts).catch(async (e: unknown) => {
      await db.destroy().catch(() => undefined);
      throw e;
    });
  }
  const hosts = agents ? agents.hosts : hostBindings(options);
  // the adapters run here, in the control plane (also with --bus nats: the agents get the ports'
  // bindings and the volumes' file paths, which their host must be able to open)
  const network = networkAdapterOf(options);
  if (options.volumeDir) mkdirSync(options.volumeDir, { recursive: true, mode: 0o700 });
  const volumes = options.volumeDir ? new LocalVolumeAdapter(options.volumeDir) : undefined;
  const engine = await createCompute({
    storage:
      options.store === 'postgres'
        ? {
            kind: 'postgres',
            url: options.pgUrl!,
            schema: options.pgSchema,
            ...(options.staleReservationMs !== undefined
              ? { staleReservationMs: options.staleReservationMs }
              : {}),
          }
        : { kind: 'sqlite', dataDir: options.dataDir },
    imageDir: join(options.dataDir, 'images'),
    hosts,
    ...(network ? { network } : {}),
    ...(volumes ? { volumes } : {}),
    ...(firstStart ? { flavors: starterFlavors } : {}),
    ...(Object.keys(engineOptions).length > 0 ? { engine: engineOptions } : {}),
  }).catch(async (e: unknown) => {
    await agents?.close();
    await db.destroy().catch(() => undefined);
    throw e;
  });
  agents?.bind(engine);
  const { listen } = options;
  const publicUrl =
    options.publicUrl ??
    `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
  let server: Awaited<ReturnType<typeof createApiServer>>;
  try {
    server = await createApiServer({
      engine,
      db,
      publicUrl,
      adminPassword: password,
      logger,
      uploadDir: join(options.dataDir, 'uploads'),
      publicMetrics: options.metricsPublic,
      ...(network ? { network } : {}),
      ...(options.rateLimit > 0 ? { rateLimit: { perSecond: options.rateLimit } } : {}),
      ...(options.policyFile ? { policyFile: options.policyFile } : {}),
      ...(options.ldapConfig ? { identityDirectories: [ldapDirectory(options.ldapConfig)] } : {}),
    });
    await server.listen(listen.host, listen.port);
  } catch (e) {
    await engine.close().catch(() => undefined);
    await agents?.close();
    await db.destroy().catch(() => undefined);
    throw e;
  }
  const url = `${publicUrl}/v3`;
  out.print(`nova-lfs serve: listening on ${publicUrl} (identity /v3, compute /v2.1, image /image)`);
  out.print(
    `${agents ? `agent hosts over NATS ${options.natsUrl} (control plane ${agents.senderId})` : 'hosts'}: ${hosts.map((h) => h.id).join(', ')}; data: ${options.store === 'postgres' ? `PostgreSQL schema ${options.pgSchema}` : options.dataDir}`,
  );
  if (network)
    out.print(
      `networks: ${options.networks.map((n) => `${n.id} ${n.cidr}`).join(', ')} (ports in ${join(options.dataDir, 'network')})`,
    );
  if (options.volumeDir)
    out.print(`volumes: ${options.volumeDir} (nova-lfs volume create --volume-dir ${options.volumeDir} ...)`);
  out.print('For the openstack CLI:');
  out.print(`export OS_AUTH_URL=${url}`);
  out.print('export OS_IDENTITY_API_VERSION=3');
  out.print('export OS_USERNAME=admin');
  out.print(
    generated
      ? `export OS_PASSWORD='${password}'   # generated now and saved in ${join(options.dataDir, 'admin-password')}; shown only this once`
      : `export OS_PASSWORD=...   # the admin password given with --admin-password, $NOVA_LFS_ADMIN_PASSWORD or ${join(options.dataDir, 'admin-password')}`,
  );
  out.print('export OS_PROJECT_NAME=admin');
  out.print('export OS_USER_DOMAIN_NAME=Default');
  out.print('export OS_PROJECT_DOMAIN_NAME=Default');
  let stopping: Promise<void> | undefined;
  return {
    url: publicUrl,
    adminPassword: password,
    engine,
    stop: () => {
      stopping ??= (async () => {
        await server.close();
        await engine.close();
        await agents?.close();
        await db.destroy();
      })();
      return stopping;
    },
  };
}

/** The engine tuning the options give (only what was given: the engine's defaults otherwise). */
function engineOptionsOf(options: ServeOptions): Partial<EngineOptions> {
  return {
    ...(options.reconcileIntervalMs !== undefined
      ? { reconcileIntervalMs: options.reconcileIntervalMs }
      : {}),
    ...(options.hostLeaseTtlMs !== undefined ? { hostLeaseTtlMs: options.hostLeaseTtlMs } : {}),
    ...(options.staleTaskGraceMs !== undefined ? { staleTaskGraceMs: options.staleTaskGraceMs } : {}),
    ...(options.spawnTimeoutMs !== undefined
      ? { timeouts: { ...defaultEngineOptions.timeouts, spawn: options.spawnTimeoutMs } }
      : {}),
  };
}

function adminPasswordOf(options: ServeOptions): { password: string; generated: boolean } {
  const file = join(options.dataDir, 'admin-password');
  if (options.adminPassword !== undefined) return { password: options.adminPassword, generated: false };
  if (existsSync(file)) return { password: readFileSync(file, 'utf8').trim(), generated: false };
  const password = randomBytes(18).toString('base64url');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return { password, generated: true };
}

/** The hosts the options name: Docker hosts on the local dockerd, FAKE hosts persisted in the data dir. */
function hostBindings(options: ServeOptions): HostBinding[] {
  const bindings: HostBinding[] = [];
  for (const name of options.dockerHosts)
    bindings.push({ id: name, driver: new DockerDriver({ hostId: name, hostname: name }) });
  for (const name of options.kvmHosts)
    bindings.push({
      id: name,
      driver: new KvmDriver({
        hostId: name,
        virtType: options.kvmAccel ? 'kvm' : 'qemu',
        stateDir: join(options.dataDir, 'kvm', name),
      }),
    });
  for (const name of options.lxcHosts)
    bindings.push({ id: name, driver: new LxcDriver({ hostId: name, hostname: name }) });
  for (let i = 1; i <= options.fakeHosts; i++) {
    const id = `fake-${i}`;
    bindings.push({
      id,
      driver: new FakeDriver({ hostname: id, statePath: join(options.dataDir, `${id}.guests.json`) }),
    });
  }
  return bindings;
}

/**
 * The API's own database: `<data-dir>/api.sqlite`, or the PostgreSQL schema `<schema>_api` beside
 * the engine's (created when missing; the name is a validated identifier).
 */
async function apiDatabase(options: ServeOptions): Promise<{ db: Kysely<object>; fresh: boolean }> {
  if (options.store === 'postgres') {
    const schema = `${options.pgSchema}_api`;
    const setup = new pg.Client({ connectionString: options.pgUrl! });
    await setup.connect();
    let fresh: boolean;
    try {
      const found = await setup.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [
        schema,
      ]);
      fresh = found.rowCount === 0;
      await setup.query(`CREATE SCHEMA IF NOT EXISTS ${setup.escapeIdentifier(schema)}`);
    } finally {
      await setup.end();
    }
    const pool = new pg.Pool({
      connectionString: options.pgUrl!,
      max: 8,
      options: `-c search_path=${schema}`,
    });
    return { db: new Kysely<object>({ dialect: new PostgresDialect({ pool }) }), fresh };
  }
  const file = join(options.dataDir, 'api.sqlite');
  const fresh = !existsSync(file);
  return { db: openKyselySqlite(file), fresh };
}

const DOMAIN_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The directory domain of `--ldap-config FILE`: a YAML mapping of {@link LdapBackendOptions} plus
 * `domainName` (the Keystone domain its users log in to; default `ldap`). `domainId` defaults to
 * the name when that is a valid id (`[A-Za-z0-9_-]{1,64}`), else must be given; it cannot be
 * `default` (the Default domain holds the SQL administrator).
 * @throws ConfigurationError naming the setting (`ldap.<option>`)
 */
function ldapDirectory(file: string): DirectoryDomain {
  const parsed: unknown = parseYaml(readFileSync(file, 'utf8'));
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigurationError('ldap', `${file} must hold a YAML mapping of LDAP options`);
  const { domainName = 'ldap', ...rest } = parsed as Record<string, unknown>;
  if (typeof domainName !== 'string' || domainName.length === 0 || domainName.length > 64)
    throw new ConfigurationError('ldap.domainName', 'ldap.domainName must be a name of 1 to 64 characters');
  const domainId = rest.domainId ?? (DOMAIN_ID.test(domainName) ? domainName : undefined);
  if (domainId === undefined)
    throw new ConfigurationError(
      'ldap.domainId',
      `ldap.domainId is required: the domain name "${domainName}" is not a valid id`,
    );
  if (domainId === 'default')
    throw new ConfigurationError(
      'ldap.domainId',
      'ldap.domainId cannot be "default": the Default domain holds the SQL administrator',
    );
  const backend = new LdapIdentityBackend({ ...rest, domainId } as unknown as LdapBackendOptions);
  return { domainName, backend };
}
