import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  ErrorCode,
  type FieldIssue,
  type Instance,
  type NetworkAdapter,
  type NetworkRequest,
  NotFoundError,
  NovaError,
  type PortBinding,
  ValidationError,
} from '@nova-lfs/core';
import { z } from 'zod';
import { assignable, formatIpv4, parseCidr, parseIpv4, type Subnet } from './ipv4.js';

/** One configured network: an IPv4 subnet the adapter hands addresses out of. */
export interface LocalNetworkConfig {
  /** Letters, digits, `-` and `_`, 1-64 characters. */
  readonly id: string;
  /** An IPv4 CIDR with a prefix length from 8 to 30, e.g. `10.20.0.0/24`. */
  readonly cidr: string;
  /** Display name (Nova's network label); default the id. At most 255 characters, no control characters. */
  readonly name?: string;
}

/** What {@link LocalNetworkAdapter}'s constructor takes. */
export interface LocalNetworkAdapterOptions {
  /** Directory of the adapter's state (`ports.json`); created on the first write. */
  readonly stateDir: string;
  /** The networks ports can be made on. */
  readonly networks: readonly LocalNetworkConfig[];
}

/** A configured network as {@link LocalNetworkAdapter.listNetworks} reports it. */
export interface LocalNetwork {
  readonly id: string;
  readonly name: string;
  /** The subnet, normalised (`10.20.0.0/24`). */
  readonly cidr: string;
  /** The first host address, never handed to a port. */
  readonly gateway: string;
  /** Addresses a port can get in all (the network, gateway and broadcast addresses excluded). */
  readonly size: number;
  /** Addresses no port holds now. */
  readonly available: number;
}

/**
 * A port: one MAC and one IPv4 address on one network, bound to at most one instance.
 * `origin: 'network'` ports were made by `allocate` for a network request and are deleted when
 * released; `origin: 'user'` ports were made by {@link LocalNetworkAdapter.createPort} and are
 * only unbound (Neutron's semantics for Nova).
 */
export interface LocalPort {
  readonly id: string;
  readonly networkId: string;
  /** `fa:16:3e:xx:xx:xx` unless given to `createPort`; lower case. */
  readonly macAddress: string;
  readonly ipAddress: string;
  readonly origin: 'network' | 'user';
  /** The instance the port is bound to, if any. */
  readonly instanceId?: string;
}

/** What {@link LocalNetworkAdapter.createPort} takes (`openstack port create`). */
export interface CreateLocalPort {
  readonly networkId: string;
  /** A free address of the network's subnet; default the lowest free one. */
  readonly ipAddress?: string;
  /** A unicast MAC no other port has; default a random `fa:16:3e:xx:xx:xx`. */
  readonly macAddress?: string;
}

/** Filters of {@link LocalNetworkAdapter.listPorts}. */
export interface LocalPortFilter {
  readonly networkId?: string;
  readonly instanceId?: string;
}

/** The adapter's state file could not be read or holds something it did not write. */
export class LocalNetworkStateError extends NovaError<{ path: string; reason: string }> {
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(ErrorCode.Storage, `network state ${path} is unusable: ${reason}`, { path, reason }, options);
  }
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const PORT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const NO_CONTROL = /^\P{Cc}*$/u;
/** Nova's OUI for the MACs it makes (`fa:16:3e`, CONF.base_mac). */
const MAC_PREFIX = 'fa:16:3e';
const STATE_FILE = 'ports.json';

const portSchema = z.strictObject({
  id: z.string().regex(PORT_ID),
  networkId: z.string().regex(ID),
  macAddress: z.string().regex(MAC),
  ipAddress: z.string().refine((s) => parseIpv4(s) !== undefined),
  origin: z.enum(['network', 'user']),
  instanceId: z.string().regex(INSTANCE_ID).optional(),
});
const stateSchema = z.strictObject({ version: z.literal(1), ports: z.array(portSchema) });
type State = { version: 1; ports: LocalPort[] };

interface ConfiguredNetwork {
  readonly id: string;
  readonly name: string;
  readonly subnet: Subnet;
}

/** Mutations serialised per state directory, across every adapter of this process. */
const queues = new Map<string, Promise<void>>();

function serialised<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(key) ?? Promise.resolve()).then(fn);
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  queues.set(key, settled);
  void settled.then(() => {
    if (queues.get(key) === settled) queues.delete(key);
  });
  return run;
}

/**
 * Core's `NetworkAdapter` over configured IPv4 subnets, with its ports in a JSON file: IPAM (an
 * address of the subnet per port, never the network, gateway or broadcast address, never one
 * address twice, released addresses reused), Nova-style MACs and Neutron's port semantics (a port
 * made for a network is deleted on release; a port made beforehand is unbound and kept; a port is
 * bound to one instance at a time).
 *
 * It binds ports in its records only. It creates no tap device (libvirt creates the tap of an
 * `<interface type='ethernet'>` itself), no bridge, no DHCP server and no route: no traffic leaves
 * the host through what it hands out. The binding tells a driver the tap name to use
 * (`tap` + the first 11 characters of the port id, Nova's naming, at most 15 characters).
 *
 * Mutations are serialised within the process (one queue per state directory) and each is one
 * atomic write (temporary file, fsync, rename); one process owns a state directory.
 */
export class LocalNetworkAdapter implements NetworkAdapter {
  /** The state directory, resolved. */
  readonly stateDir: string;
  private readonly networks: ReadonlyMap<string, ConfiguredNetwork>;

  /** @throws ValidationError naming `stateDir` or `networks.<i>.id|cidr|name`. */
  constructor(options: LocalNetworkAdapterOptions) {
    const issues: FieldIssue[] = [];
    const dir = (options as Partial<LocalNetworkAdapterOptions> | undefined)?.stateDir;
    if (typeof dir !== 'string' || dir.length === 0 || dir.length > 4096 || dir.includes('\0'))
      issues.push(issue('stateDir', 'format', 'a directory path (no NUL, at most 4096 characters)'));
    const networks = new Map<string, ConfiguredNetwork>();
    const list = (options as Partial<LocalNetworkAdapterOptions> | undefined)?.networks;
    if (!Array.isArray(list)) issues.push(issue('networks', 'type', 'an array of { id, cidr, name? }'));
    for (const [i, n] of (Array.isArray(list) ? list : []).entries()) {
      const at = `networks.${i}`;
      const net = (typeof n === 'object' && n !== null ? n : {}) as Partial<LocalNetworkConfig>;
      const idOk = typeof net.id === 'string' && ID.test(net.id);
      if (!idOk) issues.push(issue(`${at}.id`, 'pattern', 'letters, digits, - and _ (1-64)'));
      else if (networks.has(net.id as string))
        issues.push(issue(`${at}.id`, 'duplicate', `network ${net.id} is configured twice`));
      const subnet = parseCidr(net.cidr);
      if ('rule' in subnet) issues.push(issue(`${at}.cidr`, subnet.rule, subnet.message));
      const name = net.name ?? net.id;
      if (
        net.name !== undefined &&
        (typeof net.name !== 'string' ||
          net.name.length < 1 ||
          net.name.length > 255 ||
          !NO_CONTROL.test(net.name))
      )
        issues.push(issue(`${at}.name`, 'format', '1-255 characters without control characters'));
      if (idOk && !('rule' in subnet) && typeof name === 'string')
        networks.set(net.id as string, { id: net.id as string, name, subnet });
    }
    if (issues.length) throw new ValidationError(issues);
    this.stateDir = resolve(dir as string);
    this.networks = networks;
  }

  /** The configured networks, in configuration order, with how many addresses are free. */
  async listNetworks(): Promise<LocalNetwork[]> {
    const { ports } = await this.load();
    return [...this.networks.values()].map((n) => {
      const size = n.subnet.last - n.subnet.first + 1;
      const used = new Set(
        ports.filter((p) => p.networkId === n.id).map((p) => parseIpv4(p.ipAddress) as number),
      );
      const inSubnet = [...used].filter((ip) => assignable(n.subnet, ip)).length;
      return {
        id: n.id,
        name: n.name,
        cidr: `${formatIpv4(n.subnet.network)}/${n.subnet.prefix}`,
        gateway: formatIpv4(n.subnet.gateway),
        size,
        available: size - inSubnet,
      };
    });
  }

  /**
   * Makes a port on a network, bound to no instance (`openstack port create`); `allocate` binds it
   * by id, and releasing it unbinds it and keeps it.
   * @throws ValidationError naming `networkId`, `ipAddress` (format, not in the subnet, in use) or
   *   `macAddress` (format, not unicast, in use); NotFoundError naming `networkId`.
   */
  async createPort(request: CreateLocalPort): Promise<LocalPort> {
    const r = (typeof request === 'object' && request !== null ? request : {}) as Partial<CreateLocalPort>;
    const issues: FieldIssue[] = [];
    checkId(issues, 'networkId', r.networkId, ID);
    const ip = r.ipAddress === undefined ? undefined : parseIpv4(r.ipAddress);
    if (r.ipAddress !== undefined && ip === undefined)
      issues.push(issue('ipAddress', 'format', 'an IPv4 address such as 10.0.0.5'));
    const mac = r.macAddress === undefined ? undefined : normaliseMac(r.macAddress);
    if (r.macAddress !== undefined && mac === undefined)
      issues.push(issue('macAddress', 'format', 'a unicast MAC such as fa:16:3e:00:00:01'));
    if (issues.length) throw new ValidationError(issues);
    const network = this.network(r.networkId as string);
    return this.mutate((state) => {
      const port: LocalPort = {
        id: randomUUID(),
        networkId: network.id,
        macAddress: mac === undefined ? newMac(state) : takenMac(state, mac),
        ipAddress: formatIpv4(ip === undefined ? nextFreeIp(state, network) : takenIp(state, network, ip)),
        origin: 'user',
      };
      state.ports.push(port);
      return port;
    });
  }

  /** A port. @throws ValidationError or NotFoundError naming `portId`. */
  async getPort(id: string): Promise<LocalPort> {
    checkIds([['portId', id, PORT_ID]]);
    const port = (await this.load()).ports.find((p) => p.id === id);
    if (!port) throw new NotFoundError('port', id, 'portId');
    return port;
  }

  /** Ports, optionally of one network or bound to one instance, in creation order. */
  async listPorts(filter: LocalPortFilter = {}): Promise<LocalPort[]> {
    const f = (typeof filter === 'object' && filter !== null ? filter : {}) as LocalPortFilter;
    checkIds([
      ['networkId', f.networkId, ID, true],
      ['instanceId', f.instanceId, INSTANCE_ID, true],
    ]);
    return (await this.load()).ports.filter(
      (p) =>
        (f.networkId === undefined || p.networkId === f.networkId) &&
        (f.instanceId === undefined || p.instanceId === f.instanceId),
    );
  }

  /**
   * Deletes a port and frees its address; resolves if there is none.
   * @throws ValidationError naming `portId` (rule `in-use`) while it is bound to an instance.
   */
  async deletePort(id: string): Promise<void> {
    checkIds([['portId', id, PORT_ID]]);
    await this.mutate((state) => {
      const at = state.ports.findIndex((p) => p.id === id);
      const port = state.ports[at];
      if (!port) return false;
      if (port.instanceId)
        throw new ValidationError([
          issue('portId', 'in-use', `port ${id} is bound to instance ${port.instanceId}`),
        ]);
      state.ports.splice(at, 1);
      return undefined;
    });
  }

  /**
   * Binds one port per request to `instance`, in order: a new port (random `fa:16:3e` MAC, the
   * lowest free address) for `{ networkId }`, the port itself for `{ portId }`, a new port on the
   * only configured network for `{}`. All or nothing: when one request fails, nothing is bound.
   * A port already bound to `instance` is handed back as it is, so asking again for the ports it
   * has (by id) returns the same bindings; a network request always makes a new port (an
   * instance may have two interfaces on one network).
   * @throws ValidationError naming `portId` (rule `in-use`: bound to another instance; `duplicate`:
   *   asked twice), `networkId` (rule `required`: `{}` with not exactly one network configured;
   *   `exhausted`: no free address, Nova's NoMoreFixedIps), or a malformed field; NotFoundError
   *   naming `networkId` or `portId`.
   */
  async allocate(instance: Instance, requests: readonly NetworkRequest[]): Promise<PortBinding[]> {
    const instanceId = (instance as Partial<Instance> | undefined)?.id;
    checkIds([['instance.id', instanceId, INSTANCE_ID]]);
    if (!Array.isArray(requests))
      throw new ValidationError([issue('requests', 'type', 'an array of { networkId? , portId? }')]);
    const issues: FieldIssue[] = [];
    for (const r of requests) {
      if (typeof r !== 'object' || r === null) {
        issues.push(issue('requests', 'type', 'each request is { networkId? , portId? }'));
        continue;
      }
      for (const key of Object.keys(r))
        if (key !== 'networkId' && key !== 'portId')
          issues.push(issue(key, 'unrecognized_keys', `unknown field ${key}`));
      checkId(issues, 'networkId', r.networkId, ID, true);
      checkId(issues, 'portId', r.portId, PORT_ID, true);
      if (r.networkId !== undefined && r.portId !== undefined)
        issues.push(issue('portId', 'conflict', 'give networkId or portId, not both'));
    }
    if (issues.length) throw new ValidationError(issues);
    const networks = requests.map((r) => (r.portId === undefined ? this.network(r.networkId) : undefined));
    if (requests.length === 0) return [];
    return this.mutate((state) => {
      const asked = new Set<string>();
      let changed = false;
      const ports = requests.map((r, i) => {
        const network = networks[i];
        if (network) {
          const port: LocalPort = {
            id: randomUUID(),
            networkId: network.id,
            macAddress: newMac(state),
            ipAddress: formatIpv4(nextFreeIp(state, network)),
            origin: 'network',
            instanceId: instanceId as string,
          };
          state.ports.push(port);
          changed = true;
          return port;
        }
        const id = r.portId as string;
        if (asked.has(id))
          throw new ValidationError([issue('portId', 'duplicate', `port ${id} asked twice`)]);
        asked.add(id);
        const at = state.ports.findIndex((p) => p.id === id);
        const port = state.ports[at];
        if (!port) throw new NotFoundError('port', id, 'portId');
        if (port.instanceId === instanceId) return port;
        if (port.instanceId)
          throw new ValidationError([
            issue('portId', 'in-use', `port ${id} is bound to instance ${port.instanceId}`),
          ]);
        const bound = { ...port, instanceId: instanceId as string };
        state.ports[at] = bound;
        changed = true;
        return bound;
      });
      return { result: ports.map(bindingOf), write: changed };
    }, true);
  }

  /**
   * Releases the ports `portIds` bound to `instance`, or all of them when omitted: ports made for
   * a network are deleted (their addresses become free), ports made with `createPort` are unbound
   * and kept. Ports not bound to `instance` are left alone. Idempotent.
   */
  async deallocate(instance: Instance, portIds?: readonly string[]): Promise<void> {
    const instanceId = (instance as Partial<Instance> | undefined)?.id;
    checkIds([['instance.id', instanceId, INSTANCE_ID]]);
    if (portIds !== undefined) {
      if (!Array.isArray(portIds))
        throw new ValidationError([issue('portIds', 'type', 'an array of port ids')]);
      checkIds(portIds.map((id) => ['portId', id, PORT_ID] as const));
    }
    await this.mutate((state) => {
      const before = JSON.stringify(state.ports);
      state.ports = state.ports.flatMap((p): LocalPort[] => {
        if (p.instanceId !== instanceId || (portIds && !portIds.includes(p.id))) return [p];
        if (p.origin === 'network') return [];
        const { instanceId: _bound, ...unbound } = p;
        return [unbound];
      });
      return JSON.stringify(state.ports) === before ? false : undefined;
    });
  }

  private network(id: string | undefined): ConfiguredNetwork {
    if (id === undefined) {
      const only = this.networks.size === 1 ? [...this.networks.values()][0] : undefined;
      if (!only)
        throw new ValidationError([
          issue(
            'networkId',
            'required',
            `${this.networks.size} networks are configured: name one (networkId) or a port (portId)`,
          ),
        ]);
      return only;
    }
    const network = this.networks.get(id);
    if (!network) throw new NotFoundError('network', id, 'networkId');
    return network;
  }

  private get statePath(): string {
    return join(this.stateDir, STATE_FILE);
  }

  private async load(): Promise<State> {
    let text: string;
    try {
      text = await readFile(this.statePath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, ports: [] };
      throw new LocalNetworkStateError(this.statePath, 'cannot be read', { cause: e });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new LocalNetworkStateError(this.statePath, 'not JSON', { cause: e });
    }
    const state = stateSchema.safeParse(parsed);
    if (!state.success) throw new LocalNetworkStateError(this.statePath, 'not a state this adapter wrote');
    return state.data as State;
  }

  /**
   * Runs `change` on the current state within the directory's queue and writes the state back
   * atomically unless it returns `false` (nothing changed) or throws (nothing is written). With
   * `explicit`, `change` returns `{ result, write }`.
   */
  private mutate<T>(change: (state: State) => T | false | undefined): Promise<T>;
  private mutate<T>(change: (state: State) => { result: T; write: boolean }, explicit: true): Promise<T>;
  private mutate<T>(change: (state: State) => unknown, explicit = false): Promise<T> {
    return serialised(this.stateDir, async () => {
      const state = await this.load();
      const out = change(state);
      const { result, write } = explicit
        ? (out as { result: T; write: boolean })
        : { result: out as T, write: out !== false };
      if (write) await this.save(state);
      return result;
    });
  }

  /** Writes the state to a temporary file, flushes it, then renames it over the state file. */
  private async save(state: State): Promise<void> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const tmp = `${this.statePath}.${process.pid}.${randomUUID()}.tmp`;
    try {
      const f = await open(tmp, 'wx', 0o600);
      try {
        await f.writeFile(`${JSON.stringify(state, null, 1)}\n`, 'utf8');
        await f.sync();
      } finally {
        await f.close();
      }
      await rename(tmp, this.statePath);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw new LocalNetworkStateError(this.statePath, 'cannot be written', { cause: e });
    }
  }
}

/**
 * The binding a driver gets for a port (the KVM driver's contract): the tap name is Nova's,
 * `tap` + the first 11 characters of the port id (at most 15, Linux's IFNAMSIZ - 1).
 */
export function bindingOf(port: LocalPort): PortBinding {
  return {
    portId: port.id,
    networkId: port.networkId,
    macAddress: port.macAddress,
    ipAddresses: [port.ipAddress],
    binding: { vifType: 'ethernet', tap: `tap${port.id.slice(0, 11)}` },
  };
}

function issue(path: string, rule: string, message: string): FieldIssue {
  return { path, rule, message };
}

function checkId(
  issues: FieldIssue[],
  path: string,
  value: unknown,
  pattern: RegExp,
  optional = false,
): void {
  if (optional && value === undefined) return;
  if (typeof value !== 'string' || !pattern.test(value))
    issues.push(issue(path, 'pattern', 'letters, digits, - and _ starting with a letter or digit'));
}

function checkIds(checks: readonly (readonly [string, unknown, RegExp, boolean?])[]): void {
  const issues: FieldIssue[] = [];
  for (const [path, value, pattern, optional] of checks) checkId(issues, path, value, pattern, optional);
  if (issues.length) throw new ValidationError(issues);
}

function normaliseMac(text: unknown): string | undefined {
  if (typeof text !== 'string' || text.length !== 17) return undefined;
  const mac = text.toLowerCase();
  if (!MAC.test(mac)) return undefined;
  const first = Number.parseInt(mac.slice(0, 2), 16);
  if (first & 1 || mac === '00:00:00:00:00:00') return undefined; // multicast / broadcast / zero
  return mac;
}

function takenMac(state: State, mac: string): string {
  if (state.ports.some((p) => p.macAddress === mac))
    throw new ValidationError([issue('macAddress', 'in-use', `MAC ${mac} belongs to another port`)]);
  return mac;
}

function newMac(state: State): string {
  const used = new Set(state.ports.map((p) => p.macAddress));
  for (;;) {
    const tail = [...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':');
    const mac = `${MAC_PREFIX}:${tail}`;
    if (!used.has(mac)) return mac;
  }
}

function takenIp(state: State, network: ConfiguredNetwork, ip: number): number {
  if (!assignable(network.subnet, ip))
    throw new ValidationError([
      issue(
        'ipAddress',
        'range',
        `${formatIpv4(ip)} is not an assignable address of ${network.id} (${formatIpv4(network.subnet.first)}-${formatIpv4(network.subnet.last)})`,
      ),
    ]);
  const text = formatIpv4(ip);
  if (state.ports.some((p) => p.networkId === network.id && p.ipAddress === text))
    throw new ValidationError([
      issue('ipAddress', 'in-use', `${text} belongs to another port on ${network.id}`),
    ]);
  return ip;
}

/** The lowest address of the subnet no port on the network holds. */
function nextFreeIp(state: State, network: ConfiguredNetwork): number {
  const used = new Set(state.ports.filter((p) => p.networkId === network.id).map((p) => p.ipAddress));
  for (let ip = network.subnet.first; ip <= network.subnet.last; ip++)
    if (!used.has(formatIpv4(ip))) return ip;
  throw new ValidationError([
    issue('networkId', 'exhausted', `no free address left on network ${network.id}`),
  ]);
}
