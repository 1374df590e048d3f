import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isNovaError } from '@nova-lfs/core';
import { LocalNetworkAdapter } from '@nova-lfs/network-local';
import { z } from 'zod';

/** `nova-lfs serve --help`. */
export const serveHelp = `Usage: nova-lfs serve [options]

Runs the OpenStack-compatible API (Identity v3 at /v3, Compute v2.1 at /v2.1, Image v2 at
/image) over a Nova LFS engine on one listener. State is kept in the data directory (SQLite,
the embedded default) or in PostgreSQL; a restart keeps everything.

Options:
  --listen HOST:PORT        address to listen on (default 127.0.0.1:8774)
  --public-url URL          URL clients use to reach it (default http://HOST:PORT)
  --data-dir DIR            state directory (default $NOVA_LFS_DATA_DIR or ./.nova-lfs)
  --admin-password PW       password of the bootstrap user "admin" (project "admin", domain
                            "Default"); default $NOVA_LFS_ADMIN_PASSWORD, else the one saved in
                            DIR/admin-password, else a generated one, saved there and printed once
  --docker-host NAME        add a Docker host NAME on the local dockerd (repeatable)
  --kvm-host NAME           add a KVM host NAME on the local libvirtd (qemu:///system, QEMU TCG
                            unless --kvm-accel; repeatable)
  --kvm-accel               KVM hosts use hardware virtualization (virt type kvm)
  --lxc-host NAME           add an LXC host NAME (LXC 5's lxc-* tools, privileged; repeatable)
  --fake-hosts N            add N FAKE hosts (fake-1..fake-N; guests are records in DIR, nothing
                            runs) for trying the API without a hypervisor
  --network ID=CIDR[,NAME]  a network servers get ports and addresses on (repeatable): an IPv4
                            subnet (prefix 8-30) of the built-in LocalNetworkAdapter, its ports in
                            DIR/network; ID is letters, digits and - (what --nic net-id=ID and
                            "networks":[{"uuid":"ID"}] name). Bookkeeping only: no bridge, DHCP
                            or traffic. Without any, the cloud has no network service
  --volumes                 serve volumes from DIR/volumes (the built-in LocalVolumeAdapter: one
                            file per volume; make them with "nova-lfs volume create")
  --volume-dir VDIR         the same, from VDIR instead
  --store sqlite|postgres   where the state lives (default sqlite in the data directory)
  --pg-url URL              PostgreSQL URL with --store postgres (default $NOVA_LFS_PG_URL)
  --pg-schema NAME          PostgreSQL schema (default nova_lfs)
  --bus nats                drive compute agents over NATS instead of local drivers (a
                            distributed control plane: run several serve processes with
                            --store postgres on one schema and the same --agent-host list)
  --agent-host ID           host served by a nova-lfs-agent with --host-id ID (repeatable; with
                            --bus nats only, instead of --docker-host/--fake-hosts). Every agent
                            must answer at start; afterwards its heartbeats mark it up or down.
                            Without any --agent-host the agents are discovered: every host that
                            heartbeats (now or later) is added
  --evacuate-after-ms MS    with --bus nats: evacuate a host (rebuild its instances elsewhere)
                            once it has been down for MS (default 0: never, evacuate by hand)
  --nats-url URL            NATS server with --bus nats (default $NOVA_LFS_NATS_URL or
                            nats://127.0.0.1:4222)
  --nats-user USER          NATS user of this control plane
  --nats-password PW        its password (default $NOVA_LFS_NATS_PASSWORD)
  --host-down-after-ms MS   an agent host is down once its heartbeats stop for MS (default 30000)
  --reconcile-interval-ms MS  periodic reconciliation (default 60000; 0 turns it off)
  --host-lease-ttl-ms MS    lease of a host held by this process (default 30000): when a control
                            plane dies, another takes its hosts over once their leases expire
  --stale-task-grace-ms MS  a task of another process is taken for dead and healed once unchanged
                            for its deadline plus MS (default 60000)
  --stale-reservation-ms MS  with --store postgres: a quota reservation older than MS is taken for
                            one a killed process left and dropped by reconciliation (default
                            30000, at least 1000): until then it counts against the project's quota
  --spawn-timeout-ms MS     deadline of a spawn (default 600000)
  --policy-file FILE        YAML policy file overriding the default rules
  --ldap-config FILE        users and groups of one domain from LDAP / Active Directory (read-only;
                            Default, with admin, stays SQL): YAML LDAP options (url, bindDn,
                            bindPassword, userTreeDn, groupTreeDn, ...) plus domainName (default
                            ldap), created at start; users log in with --os-user-domain-name NAME
  --metrics-public          serve /metrics without a token (default: admin token required)
  --rate-limit N            requests per second per caller, with bursts of 2N (default 100;
                            0 turns it off); beyond it a 429 with Retry-After
  --log-level LEVEL         fatal, error, warn, info, debug, trace or silent (default info)
  -h, --help                this help

On start it prints the OS_* variables for the openstack CLI. Ctrl-C stops it cleanly.`;

const listenSchema = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/, 'must be HOST:PORT')
  .transform((s) => {
    const at = s.lastIndexOf(':');
    return { host: s.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(s.slice(at + 1)) };
  })
  .refine((l) => l.port <= 65535, 'the port must be at most 65535');

/** `--network ID=CIDR[,NAME]`; the CIDR and the name are checked by the adapter. */
const networkSpec = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9-]{0,63}=[0-9./]{9,18}(,[^\p{Cc}]{1,255})?$/u,
    'must be ID=CIDR[,NAME]: ID 1-64 letters, digits and - (starting with a letter or digit), CIDR an IPv4 subnet such as 10.0.0.0/24, NAME 1-255 characters without control characters',
  )
  .transform((s) => {
    const eq = s.indexOf('=');
    const comma = s.indexOf(',', eq);
    const id = s.slice(0, eq);
    const cidr = comma < 0 ? s.slice(eq + 1) : s.slice(eq + 1, comma);
    return comma < 0 ? { id, cidr } : { id, cidr, name: s.slice(comma + 1) };
  });

const hostName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 letters, digits and ._-');

/** Validated options of `nova-lfs serve`. */
export const serveOptionsSchema = z.strictObject({
  listen: listenSchema.prefault('127.0.0.1:8774'),
  publicUrl: z.url().optional(),
  dataDir: z.string().min(1),
  adminPassword: z.string().min(8, 'must be at least 8 characters').max(1024).optional(),
  dockerHosts: z.array(hostName).max(64).default([]),
  kvmHosts: z.array(hostName).max(64).default([]),
  kvmAccel: z.boolean().default(false),
  lxcHosts: z.array(hostName).max(64).default([]),
  fakeHosts: z.coerce.number().int().min(0).max(1000).default(0),
  networks: z.array(networkSpec).max(64).default([]),
  /** Directory of the LocalVolumeAdapter (`--volumes`: `<data-dir>/volumes`); none: no volume service. */
  volumeDir: z
    .string()
    .min(1)
    .max(4096)
    .refine((d) => !d.includes('\0'), 'must not contain NUL')
    .optional(),
  store: z.enum(['sqlite', 'postgres']).default('sqlite'),
  pgUrl: z.string().min(1).optional(),
  pgSchema: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier')
    .default('nova_lfs'),
  bus: z.enum(['none', 'nats']).default('none'),
  agentHosts: z
    .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be 1-64 letters, digits, _ and -'))
    .max(1000)
    .default([]),
  natsUrl: z.string().min(1).default('nats://127.0.0.1:4222'),
  natsUser: z.string().min(1).optional(),
  natsPassword: z.string().min(1).optional(),
  hostDownAfterMs: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  evacuateAfterMs: z.coerce.number().int().min(0).max(86_400_000).default(0),
  reconcileIntervalMs: z.coerce.number().int().min(0).max(86_400_000).optional(),
  hostLeaseTtlMs: z.coerce.number().int().min(100).max(86_400_000).optional(),
  staleTaskGraceMs: z.coerce.number().int().min(0).max(86_400_000).optional(),
  // several processes share the database: a live one settles a reservation within its admission
  staleReservationMs: z.coerce.number().int().min(1000).max(86_400_000).optional(),
  spawnTimeoutMs: z.coerce.number().int().min(100).max(86_400_000).optional(),
  policyFile: z.string().min(1).optional(),
  ldapConfig: z.string().min(1).optional(),
  metricsPublic: z.boolean().default(false),
  rateLimit: z.coerce.number().int().min(0).max(1_000_000).default(100),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Options of `nova-lfs serve`. */
export type ServeOptions = z.output<typeof serveOptionsSchema>;

/** A bad command line: the message names the option. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Parses `nova-lfs serve` arguments and the environment.
 * @returns `'help'` for `--help`
 * @throws UsageError naming the bad option
 */
export function parseServeArgs(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ServeOptions | 'help' {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: 'string' },
        'public-url': { type: 'string' },
        'data-dir': { type: 'string' },
        'admin-password': { type: 'string' },
        'docker-host': { type: 'string', multiple: true },
        'kvm-host': { type: 'string', multiple: true },
        'kvm-accel': { type: 'boolean' },
        'lxc-host': { type: 'string', multiple: true },
        'fake-hosts': { type: 'string' },
        network: { type: 'string', multiple: true },
        volumes: { type: 'boolean' },
        'volume-dir': { type: 'string' },
        store: { type: 'string' },
        'pg-url': { type: 'string' },
        'pg-schema': { type: 'string' },
        bus: { type: 'string' },
        'agent-host': { type: 'string', multiple: true },
        'nats-url': { type: 'string' },
        'nats-user': { type: 'string' },
        'nats-password': { type: 'string' },
        'host-down-after-ms': { type: 'string' },
        'evacuate-after-ms': { type: 'string' },
        'reconcile-interval-ms': { type: 'string' },
        'host-lease-ttl-ms': { type: 'string' },
        'stale-task-grace-ms': { type: 'string' },
        'stale-reservation-ms': { type: 'string' },
        'spawn-timeout-ms': { type: 'string' },
        'policy-file': { type: 'string' },
        'ldap-config': { type: 'string' },
        'metrics-public': { type: 'boolean' },
        'rate-limit': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (v.help) return 'help';
  const dataDir = resolve(String(v['data-dir'] ?? env.NOVA_LFS_DATA_DIR ?? '.nova-lfs'));
  if (v.volumes === true && v['volume-dir'] !== undefined)
    throw new UsageError(
      '--volumes, --volume-dir: give one (--volume-dir names the directory --volumes defaults)',
    );
  if (v['volume-dir'] === '') throw new UsageError('--volume-dir: must be a directory, not empty');
  const volumeDir =
    v['volume-dir'] !== undefined
      ? resolve(String(v['volume-dir']))
      : v.volumes === true
        ? join(dataDir, 'volumes')
        : undefined;
  const raw = {
    ...(v.listen !== undefined ? { listen: v.listen } : {}),
    ...(v['public-url'] !== undefined ? { publicUrl: v['public-url'] } : {}),
    dataDir,
    ...((v['admin-password'] ?? env.NOVA_LFS_ADMIN_PASSWORD) !== undefined
      ? { adminPassword: v['admin-password'] ?? env.NOVA_LFS_ADMIN_PASSWORD }
      : {}),
    dockerHosts: v['docker-host'] ?? [],
    kvmHosts: v['kvm-host'] ?? [],
    kvmAccel: v['kvm-accel'] === true,
    lxcHosts: v['lxc-host'] ?? [],
    ...(v['fake-hosts'] !== undefined ? { fakeHosts: v['fake-hosts'] } : {}),
    networks: v.network ?? [],
    ...(volumeDir !== undefined ? { volumeDir } : {}),
    ...(v.store !== undefined ? { store: v.store } : {}),
    ...((v['pg-url'] ?? env.NOVA_LFS_PG_URL) !== undefined
      ? { pgUrl: v['pg-url'] ?? env.NOVA_LFS_PG_URL }
      : {}),
    ...(v['pg-schema'] !== undefined ? { pgSchema: v['pg-schema'] } : {}),
    ...(v.bus !== undefined ? { bus: v.bus } : {}),
    agentHosts: v['agent-host'] ?? [],
    ...((v['nats-url'] ?? env.NOVA_LFS_NATS_URL) !== undefined
      ? { natsUrl: v['nats-url'] ?? env.NOVA_LFS_NATS_URL }
      : {}),
    ...(v['nats-user'] !== undefined ? { natsUser: v['nats-user'] } : {}),
    ...((v['nats-password'] ?? env.NOVA_LFS_NATS_PASSWORD) !== undefined
      ? { natsPassword: v['nats-password'] ?? env.NOVA_LFS_NATS_PASSWORD }
      : {}),
    ...(v['host-down-after-ms'] !== undefined ? { hostDownAfterMs: v['host-down-after-ms'] } : {}),
    ...(v['evacuate-after-ms'] !== undefined ? { evacuateAfterMs: v['evacuate-after-ms'] } : {}),
    ...(v['reconcile-interval-ms'] !== undefined ? { reconcileIntervalMs: v['reconcile-interval-ms'] } : {}),
    ...(v['host-lease-ttl-ms'] !== undefined ? { hostLeaseTtlMs: v['host-lease-ttl-ms'] } : {}),
    ...(v['stale-task-grace-ms'] !== undefined ? { staleTaskGraceMs: v['stale-task-grace-ms'] } : {}),
    ...(v['stale-reservation-ms'] !== undefined ? { staleReservationMs: v['stale-reservation-ms'] } : {}),
    ...(v['spawn-timeout-ms'] !== undefined ? { spawnTimeoutMs: v['spawn-timeout-ms'] } : {}),
    ...(v['policy-file'] !== undefined ? { policyFile: v['policy-file'] } : {}),
    ...(v['ldap-config'] !== undefined ? { ldapConfig: v['ldap-config'] } : {}),
    metricsPublic: v['metrics-public'] === true,
    ...(v['rate-limit'] !== undefined ? { rateLimit: v['rate-limit'] } : {}),
    ...(v['log-level'] !== undefined ? { logLevel: v['log-level'] } : {}),
  };
  const result = serveOptionsSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const flag =
      key === 'networks' ? '--network' : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new UsageError(`${flag}: ${issue.message}`);
  }
  const options = result.data;
  if (options.networks.length > 0) networkAdapterOf(options); // the adapter's rules: CIDR, duplicates
  if (options.store === 'postgres' && !options.pgUrl)
    throw new UsageError('--pg-url: required with --store postgres');
  if (options.staleReservationMs !== undefined && options.store !== 'postgres')
    throw new UsageError(
      '--stale-reservation-ms: needs --store postgres (the embedded SQLite engine owns its database: no other process leaves reservations)',
    );
  if (options.bus === 'nats') {
    if (localHostCount(options) > 0)
      throw new UsageError(
        '--docker-host, --kvm-host, --lxc-host or --fake-hosts: with --bus nats every host is an agent (--agent-host)',
      );
    if (new Set(options.agentHosts).size !== options.agentHosts.length)
      throw new UsageError('--agent-host: each host id once');
    return options;
  }
  if (options.agentHosts.length > 0) throw new UsageError('--agent-host: needs --bus nats');
  if (options.evacuateAfterMs > 0) throw new UsageError('--evacuate-after-ms: needs --bus nats');
  if (localHostCount(options) === 0)
    throw new UsageError('--docker-host, --kvm-host, --lxc-host or --fake-hosts: name at least one host');
  const names = [...options.dockerHosts, ...options.kvmHosts, ...options.lxcHosts];
  if (new Set(names).size !== names.length)
    throw new UsageError('--docker-host, --kvm-host, --lxc-host: each host name once');
  return options;
}

function localHostCount(options: ServeOptions): number {
  return options.dockerHosts.length + options.kvmHosts.length + options.lxcHosts.length + options.fakeHosts;
}

/**
 * The LocalNetworkAdapter of the `--network` options (state in `<data-dir>/network`), or none.
 * The constructor only checks the configuration; nothing is read or written until it is used.
 * @throws UsageError naming `--network` for a bad CIDR, name or a network given twice
 */
export function networkAdapterOf(options: ServeOptions): LocalNetworkAdapter | undefined {
  if (options.networks.length === 0) return undefined;
  try {
    return new LocalNetworkAdapter({
      stateDir: join(options.dataDir, 'network'),
      networks: options.networks,
    });
  } catch (e) {
    if (!isNovaError(e)) throw e;
    const issues = (e.details as { issues?: readonly { path: string; message: string }[] }).issues ?? [];
    const first = issues[0];
    const at = first ? /^networks\.(\d+)\.(\w+)$/.exec(first.path) : null;
    const given = at ? options.networks[Number(at[1])] : undefined;
    throw new UsageError(
      `--network: ${given ? `${given.id}=${given.cidr}: ${at![2]} ` : ''}${first?.message ?? e.message}`,
    );
  }
}
