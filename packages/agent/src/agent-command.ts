import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { agentInboxPrefix, busIdSchema, connectBus } from '@nova-lfs/bus-nats';
import type { ComputeDriver } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { AgentService, type AgentStartReport } from './agent-service.js';
import { AgentArgumentsError } from './errors.js';

/** The agent's command line, parsed and checked. */
export interface AgentCommandOptions {
  readonly hostId: string;
  readonly driver: AgentDriverKind;
  readonly natsUrl: string;
  readonly natsUser?: string;
  readonly natsPassword?: string;
  /** The agent's directory (journal, staged snapshots, image cache, the fake driver's guests). */
  readonly stateDir: string;
  /** The agent's image cache (default `<stateDir>/images`): images fetched over the bus. */
  readonly imageCacheDir?: string;
  /** The control plane's image cache, when this machine shares it: artifacts under it are read in place. */
  readonly sharedImageDir?: string;
  readonly heartbeatMs: number;
  /** Fake driver only: latency of every call, in ms. */
  readonly fakeLatencyMs: number;
  /** Fake driver only: acquire image bytes on spawn (checksums then matter). */
  readonly fakeAcquireImages: boolean;
  readonly fakeVcpus?: number;
  readonly fakeRamMb?: number;
  /** Docker only: dockerd's socket. */
  readonly dockerSocket?: string;
  /** KVM only: the libvirt connection URI (default `qemu:///system`). */
  readonly kvmUri?: string;
  /** KVM only: hardware acceleration (`kvm` domains) instead of TCG (`qemu` domains, the default). */
  readonly kvmAccel: boolean;
  /** LXC only: the containers' directory (default LXC's own, `/var/lib/lxc`). */
  readonly lxcPath?: string;
}

/** The drivers an agent can serve. */
export const agentDriverKinds = ['fake', 'docker', 'kvm', 'lxc'] as const;
/** A driver an agent can serve. */
export type AgentDriverKind = (typeof agentDriverKinds)[number];

/** Usage text of `nova-lfs-agent`. */
export const agentUsage = `usage: nova-lfs-agent --host-id ID --driver fake|docker|kvm|lxc [options]
  --nats-url URL          NATS server (default nats://127.0.0.1:4222)
  --nats-user USER        NATS user of this agent (its permissions: agentPermissions(hostId))
  --nats-password PASS    its password (or NOVA_LFS_NATS_PASSWORD)
  --state-dir DIR         journal, staged snapshots, fake guests (default $NOVA_LFS_DATA_DIR/agent-ID or ./.nova-lfs/agent-ID)
  --image-cache DIR       this agent's image cache, filled over the bus (default STATE-DIR/images)
  --shared-image-dir DIR  the control plane's image cache, shared with this machine: read in place, not fetched
  --heartbeat-ms N        heartbeat interval (default 10000)
  --fake-latency-ms N     fake driver: latency per call (default 0)
  --fake-acquire-images   fake driver: read image bytes on spawn (sha256 checked by the control plane)
  --fake-vcpus N, --fake-ram-mb N   fake driver inventory
  --docker-socket PATH    docker driver: dockerd socket (default /var/run/docker.sock)
  --kvm-uri URI           kvm driver: libvirt connection (default qemu:///system)
  --kvm-accel             kvm driver: KVM acceleration (default: TCG, qemu domains)
  --lxc-path DIR          lxc driver: containers' directory (default /var/lib/lxc)`;

function positiveInt(
  option: string,
  value: string | undefined,
  fallback: number | undefined,
): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new AgentArgumentsError(
      option,
      `--${option} must be a non-negative integer, got ${JSON.stringify(value)}`,
    );
  return n;
}

/**
 * Parses the agent's arguments.
 * @throws AgentArgumentsError naming the option (missing `--host-id`, unknown driver, bad number, unknown option)
 */
export function parseAgentArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): AgentCommandOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        'host-id': { type: 'string' },
        driver: { type: 'string' },
        'nats-url': { type: 'string' },
        'nats-user': { type: 'string' },
        'nats-password': { type: 'string' },
        'state-dir': { type: 'string' },
        'image-cache': { type: 'string' },
        'shared-image-dir': { type: 'string' },
        'heartbeat-ms': { type: 'string' },
        'fake-latency-ms': { type: 'string' },
        'fake-acquire-images': { type: 'boolean' },
        'fake-vcpus': { type: 'string' },
        'fake-ram-mb': { type: 'string' },
        'docker-socket': { type: 'string' },
        'kvm-uri': { type: 'string' },
        'kvm-accel': { type: 'boolean' },
        'lxc-path': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    throw new AgentArgumentsError('argv', (e as Error).message);
  }
  const hostId = values['host-id'];
  if (typeof hostId !== 'string') throw new AgentArgumentsError('host-id', '--host-id is required');
  if (!busIdSchema.safeParse(hostId).success) {
    throw new AgentArgumentsError(
      'host-id',
      '--host-id must be letters, digits, _ and - (at most 64), starting with a letter or digit',
    );
  }
  const driver = values.driver ?? 'fake';
  if (!isDriverKind(driver)) {
    throw new AgentArgumentsError(
      'driver',
      `--driver must be one of ${agentDriverKinds.join(', ')}, got ${JSON.stringify(driver)}`,
    );
  }
  const dataDir = env.NOVA_LFS_DATA_DIR ?? '.nova-lfs';
  const password = (values['nats-password'] as string | undefined) ?? env.NOVA_LFS_NATS_PASSWORD;
  const user = values['nats-user'] as string | undefined;
  if (password !== undefined && user === undefined) {
    throw new AgentArgumentsError('nats-user', 'a NATS password needs --nats-user');
  }
  const vcpus = positiveInt('fake-vcpus', values['fake-vcpus'] as string | undefined, undefined);
  const ram = positiveInt('fake-ram-mb', values['fake-ram-mb'] as string | undefined, undefined);
  return {
    hostId,
    driver,
    natsUrl: (values['nats-url'] as string | undefined) ?? 'nats://127.0.0.1:4222',
    ...(user !== undefined ? { natsUser: user } : {}),
    ...(password !== undefined ? { natsPassword: password } : {}),
    stateDir: (values['state-dir'] as string | undefined) ?? join(dataDir, `agent-${hostId}`),
    ...(typeof values['image-cache'] === 'string' ? { imageCacheDir: values['image-cache'] } : {}),
    ...(typeof values['shared-image-dir'] === 'string' ? { sharedImageDir: values['shared-image-dir'] } : {}),
    heartbeatMs: positiveInt('heartbeat-ms', values['heartbeat-ms'] as string | undefined, 10_000) as number,
    fakeLatencyMs: positiveInt(
      'fake-latency-ms',
      values['fake-latency-ms'] as string | undefined,
      0,
    ) as number,
    fakeAcquireImages: values['fake-acquire-images'] === true,
    ...(vcpus !== undefined ? { fakeVcpus: vcpus } : {}),
    ...(ram !== undefined ? { fakeRamMb: ram } : {}),
    ...(typeof values['docker-socket'] === 'string' ? { dockerSocket: values['docker-socket'] } : {}),
    ...(typeof values['kvm-uri'] === 'string' ? { kvmUri: values['kvm-uri'] } : {}),
    kvmAccel: values['kvm-accel'] === true,
    ...(typeof values['lxc-path'] === 'string' ? { lxcPath: values['lxc-path'] } : {}),
  };
}

function isDriverKind(v: unknown): v is AgentDriverKind {
  return (agentDriverKinds as readonly unknown[]).includes(v);
}

/** The driver the command line asks for (Docker, KVM and LXC are loaded only when asked for). */
async function makeDriver(
  o: AgentCommandOptions,
): Promise<{ driver: ComputeDriver; needsImageBytes: boolean }> {
  if (o.driver === 'kvm') {
    const { KvmDriver } = await import('@nova-lfs/driver-kvm');
    return {
      driver: new KvmDriver({
        hostId: o.hostId,
        virtType: o.kvmAccel ? 'kvm' : 'qemu',
        stateDir: join(o.stateDir, 'kvm'),
        ...(o.kvmUri ? { uri: o.kvmUri } : {}),
      }),
      needsImageBytes: true,
    };
  }
  if (o.driver === 'lxc') {
    const { LxcDriver } = await import('@nova-lfs/driver-lxc');
    return {
      driver: new LxcDriver({
        hostId: o.hostId,
        hostname: o.hostId,
        ...(o.lxcPath ? { lxcPath: o.lxcPath } : {}),
      }),
      needsImageBytes: true,
    };
  }
  if (o.driver === 'docker') {
    const { DockerDriver } = await import('@nova-lfs/driver-docker');
    return {
      driver: new DockerDriver({
        hostId: o.hostId,
        hostname: o.hostId,
        ...(o.dockerSocket ? { socketPath: o.dockerSocket } : {}),
      }),
      needsImageBytes: true,
    };
  }
  return {
    driver: new FakeDriver({
      hostname: o.hostId,
      statePath: join(o.stateDir, 'fake-guests.json'),
      acquireImages: o.fakeAcquireImages,
      ...(o.fakeLatencyMs ? { latencyMs: o.fakeLatencyMs } : {}),
      ...(o.fakeVcpus !== undefined ? { vcpus: o.fakeVcpus } : {}),
      ...(o.fakeRamMb !== undefined ? { ramMb: o.fakeRamMb } : {}),
    }),
    needsImageBytes: o.fakeAcquireImages,
  };
}

/** A running agent process: stop it with `stop()` (deregisters its heartbeat, closes the bus). */
export interface RunningAgent {
  readonly agent: AgentService;
  readonly report: AgentStartReport;
  stop(): Promise<void>;
}

/**
 * Runs an agent from parsed options: connects to NATS (reply inbox scoped to the host, as its
 * permissions require), builds the driver, starts the {@link AgentService}.
 */
export async function runAgent(o: AgentCommandOptions): Promise<RunningAgent> {
  const nc = await connectBus({
    servers: o.natsUrl,
    name: `nova-agent-${o.hostId}`,
    inboxPrefix: agentInboxPrefix(o.hostId),
    ...(o.natsUser !== undefined ? { user: o.natsUser, pass: o.natsPassword ?? '' } : {}),
  });
  try {
    const { driver, needsImageBytes } = await makeDriver(o);
    const agent = new AgentService(nc, {
      hostId: o.hostId,
      driver,
      needsImageBytes,
      stateDir: o.stateDir,
      ...(o.imageCacheDir !== undefined ? { imageCacheDir: o.imageCacheDir } : {}),
      ...(o.sharedImageDir !== undefined ? { sharedImageDir: o.sharedImageDir } : {}),
      heartbeatIntervalMs: o.heartbeatMs,
    });
    const report = await agent.start();
    return {
      agent,
      report,
      async stop() {
        await agent.stop();
        await nc.drain().catch(() => undefined);
      },
    };
  } catch (e) {
    await nc.close().catch(() => undefined);
    throw e;
  }
}
