import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, type Instance, NotFoundError, ValidationError } from '@nova-lfs/core';
import { buildTestInstance } from '@nova-lfs/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { formatIpv4, parseCidr, parseIpv4 } from './ipv4.js';
import {
  LocalNetworkAdapter,
  type LocalNetworkConfig,
  LocalNetworkStateError,
} from './local-network-adapter.js';

const root = mkdtempSync(join(tmpdir(), 'nlfs-networks-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `state-${++dirs}`);

const NETS: LocalNetworkConfig[] = [
  { id: 'net-a', cidr: '10.20.0.0/24', name: 'private' },
  { id: 'net-b', cidr: '192.168.7.0/29' },
];
const adapter = (stateDir = freshDir(), networks = NETS) => new LocalNetworkAdapter({ stateDir, networks });

async function failure(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  throw new Error('expected a failure');
}

function issuesOf(e: unknown) {
  expect(e).toBeInstanceOf(ValidationError);
  return (e as ValidationError).details.issues.map((i) => [i.path, i.rule]);
}

describe('ipv4 helpers', () => {
  it('parses strict dotted quads and CIDRs with their gateway and assignable range', () => {
    expect(parseIpv4('10.0.0.1')).toBe(0x0a000001);
    expect(formatIpv4(0xc0a80701)).toBe('192.168.7.1');
    for (const bad of ['010.0.0.1', '10.0.0', '10.0.0.256', ' 10.0.0.1', '10.0.0.1\n', '1e1.0.0.1', 7])
      expect(parseIpv4(bad), String(bad)).toBeUndefined();
    const s = parseCidr('192.168.7.0/29');
    expect(s).toMatchObject({ prefix: 29 });
    if ('rule' in s) throw new Error('refused');
    expect([s.gateway, s.first, s.last, s.broadcast].map(formatIpv4)).toEqual([
      '192.168.7.1',
      '192.168.7.2',
      '192.168.7.6',
      '192.168.7.7',
    ]);
    expect(parseCidr('10.0.0.0/7')).toMatchObject({ rule: 'range' });
    expect(parseCidr('10.0.0.0/31')).toMatchObject({ rule: 'range' });
    expect(parseCidr('10.0.0.1/24')).toMatchObject({ rule: 'network-address' });
    expect(parseCidr('10.0.0.0/024')).toMatchObject({ rule: 'format' });
    expect(parseCidr('fd00::/64')).toMatchObject({ rule: 'format' });
  });
});

describe('LocalNetworkAdapter configuration', () => {
  it('validates the networks and the state directory, naming each field', () => {
    const e = (() => {
      try {
        new LocalNetworkAdapter({
          stateDir: 'a\0b',
          networks: [
            { id: 'ok', cidr: '10.0.0.0/24' },
            { id: 'ok', cidr: '10.1.0.0/24' },
            { id: "x'; DROP TABLE ports;--", cidr: '10.2.0.0/24' },
            { id: 'n3', cidr: '10.3.0.0/31' },
            { id: 'n4', cidr: '10.4.0.0/24', name: 'bad\nname' },
            { id: 'n5', cidr: '$(reboot)' },
          ],
        });
      } catch (x) {
        return x;
      }
    })();
    expect(issuesOf(e)).toEqual([
      ['stateDir', 'format'],
      ['networks.1.id', 'duplicate'],
      ['networks.2.id', 'pattern'],
      ['networks.3.cidr', 'range'],
      ['networks.4.name', 'format'],
      ['networks.5.cidr', 'format'],
    ]);
  });

  it('lists the configured networks with gateway, size and free addresses', async () => {
    const net = adapter();
    expect(await net.listNetworks()).toEqual([
      { id: 'net-a', name: 'private', cidr: '10.20.0.0/24', gateway: '10.20.0.1', size: 253, available: 253 },
      { id: 'net-b', name: 'net-b', cidr: '192.168.7.0/29', gateway: '192.168.7.1', size: 5, available: 5 },
    ]);
    await net.allocate(buildTestInstance(), [{ networkId: 'net-b' }]);
    expect((await net.listNetworks())[1]?.available).toBe(4);
  });
});

describe('LocalNetworkAdapter ports and IPAM', () => {
  it('allocates a port per network request with a Nova MAC, the next free address and the KVM driver binding', async () => {
    const net = adapter();
    const vm = buildTestInstance();
    const [a, b] = await net.allocate(vm, [{ networkId: 'net-a' }, { networkId: 'net-b' }]);
    expect(a).toEqual({
      portId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      networkId: 'net-a',
      macAddress: expect.stringMatching(/^fa:16:3e(:[0-9a-f]{2}){3}$/),
      ipAddresses: ['10.20.0.2'],
      binding: { vifType: 'ethernet', tap: `tap${a!.portId.slice(0, 11)}` },
    });
    expect(a!.binding!.tap!.length).toBeLessThanOrEqual(15);
    expect(b).toMatchObject({ networkId: 'net-b', ipAddresses: ['192.168.7.2'] });
    expect(await net.getPort(a!.portId)).toEqual({
      id: a!.portId,
      networkId: 'net-a',
      macAddress: a!.macAddress,
      ipAddress: '10.20.0.2',
      origin: 'network',
      instanceId: vm.id,
    });
    expect((await net.listPorts({ instanceId: vm.id })).map((p) => p.id)).toEqual([a!.portId, b!.portId]);
    expect((await net.listPorts({ networkId: 'net-b' })).map((p) => p.id)).toEqual([b!.portId]);
    expect(await net.allocate(vm, [])).toEqual([]);
  });

  it('uses the only network for an empty request, and refuses one when several are configured', async () => {
    const one = adapter(freshDir(), [{ id: 'solo', cidr: '172.16.0.0/16' }]);
    const [p] = await one.allocate(buildTestInstance(), [{}]);
    expect(p).toMatchObject({ networkId: 'solo', ipAddresses: ['172.16.0.2'] });
    expect(issuesOf(await failure(adapter().allocate(buildTestInstance(), [{}])))).toEqual([
      ['networkId', 'required'],
    ]);
    expect(issuesOf(await failure(adapter(freshDir(), []).allocate(buildTestInstance(), [{}])))).toEqual([
      ['networkId', 'required'],
    ]);
  });

  it('refuses unknown networks and ports with NotFoundError naming the field', async () => {
    const net = adapter();
    const noNet = await failure(net.allocate(buildTestInstance(), [{ networkId: 'net-x' }]));
    expect(noNet).toBeInstanceOf(NotFoundError);
    expect((noNet as NotFoundError).details).toEqual({ kind: 'network', id: 'net-x', field: 'networkId' });
    const noPort = await failure(net.allocate(buildTestInstance(), [{ portId: 'port-x' }]));
    expect((noPort as NotFoundError).details).toEqual({ kind: 'port', id: 'port-x', field: 'portId' });
    expect((await failure(net.getPort('port-x'))) as NotFoundError).toMatchObject({
      code: ErrorCode.NotFound,
      details: { field: 'portId' },
    });
    expect(await failure(net.createPort({ networkId: 'net-x' }))).toMatchObject({
      code: ErrorCode.NotFound,
      details: { field: 'networkId' },
    });
  });

  it('never hands out the network, gateway or broadcast address; an exhausted subnet is a typed error naming networkId; released addresses are reused', async () => {
    const net = adapter(freshDir(), [{ id: 'tiny', cidr: '10.9.9.0/29' }]);
    const vm = buildTestInstance();
    const got = await net.allocate(
      vm,
      Array.from({ length: 5 }, () => ({ networkId: 'tiny' })),
    );
    expect(got.map((p) => p.ipAddresses![0])).toEqual([
      '10.9.9.2',
      '10.9.9.3',
      '10.9.9.4',
      '10.9.9.5',
      '10.9.9.6',
    ]);
    const full = await failure(net.allocate(buildTestInstance(), [{ networkId: 'tiny' }]));
    expect(issuesOf(full)).toEqual([['networkId', 'exhausted']]);
    expect(await failure(net.createPort({ networkId: 'tiny' }))).toBeInstanceOf(ValidationError);
    // released: the lowest free address is handed out again
    await net.deallocate(vm, [got[1]!.portId, got[3]!.portId]);
    const other = buildTestInstance();
    const again = await net.allocate(other, [{ networkId: 'tiny' }, {}]);
    expect(again.map((p) => p.ipAddresses![0])).toEqual(['10.9.9.3', '10.9.9.5']);
    // a /30 has exactly one address to give
    const slash30 = adapter(freshDir(), [{ id: 'p2p', cidr: '10.0.0.4/30' }]);
    expect((await slash30.allocate(vm, [{}]))[0]!.ipAddresses).toEqual(['10.0.0.6']);
    expect(issuesOf(await failure(slash30.allocate(vm, [{}])))).toEqual([['networkId', 'exhausted']]);
  });

  it('makes ports beforehand (any free address, a given MAC) and refuses a taken or foreign address and a taken MAC', async () => {
    const net = adapter();
    const p = await net.createPort({
      networkId: 'net-a',
      ipAddress: '10.20.0.50',
      macAddress: 'FA:16:3E:AA:BB:CC',
    });
    expect(p).toEqual({
      id: expect.any(String),
      networkId: 'net-a',
      ipAddress: '10.20.0.50',
      macAddress: 'fa:16:3e:aa:bb:cc',
      origin: 'user',
    });
    const q = await net.createPort({ networkId: 'net-a' });
    expect(q.ipAddress).toBe('10.20.0.2');
    for (const [req, path, rule] of [
      [{ networkId: 'net-a', ipAddress: '10.20.0.50' }, 'ipAddress', 'in-use'],
      [{ networkId: 'net-a', ipAddress: '10.20.0.1' }, 'ipAddress', 'range'],
      [{ networkId: 'net-a', ipAddress: '10.20.0.255' }, 'ipAddress', 'range'],
      [{ networkId: 'net-a', ipAddress: '10.20.1.7' }, 'ipAddress', 'range'],
      [{ networkId: 'net-a', ipAddress: '10.20.0.07' }, 'ipAddress', 'format'],
      [{ networkId: 'net-a', macAddress: 'fa:16:3e:aa:bb:cc' }, 'macAddress', 'in-use'],
      [{ networkId: 'net-a', macAddress: '01:00:5e:00:00:01' }, 'macAddress', 'format'],
      [{ networkId: 'net-a', macAddress: 'fa-16-3e-aa-bb-cd' }, 'macAddress', 'format'],
    ] as const)
      expect(issuesOf(await failure(net.createPort(req))), JSON.stringify(req)).toEqual([[path, rule]]);
    // the same address on another network is fine
    expect((await net.createPort({ networkId: 'net-b', ipAddress: '192.168.7.2' })).ipAddress).toBe(
      '192.168.7.2',
    );
    expect((await net.listPorts()).length).toBe(3);
  });

  it('binds a port made beforehand to one instance at a time, idempotently, and unbinds and keeps it on release', async () => {
    const net = adapter();
    const p = await net.createPort({ networkId: 'net-b' });
    const a = buildTestInstance();
    const b = buildTestInstance();
    const [bound] = await net.allocate(a, [{ portId: p.id }]);
    expect(bound).toEqual({
      portId: p.id,
      networkId: 'net-b',
      macAddress: p.macAddress,
      ipAddresses: [p.ipAddress],
      binding: { vifType: 'ethernet', tap: `tap${p.id.slice(0, 11)}` },
    });
    expect(await net.allocate(a, [{ portId: p.id }])).toEqual([bound]);
    const inUse = await failure(net.allocate(b, [{ portId: p.id }]));
    expect(issuesOf(inUse)).toEqual([['portId', 'in-use']]);
    expect(issuesOf(await failure(net.deletePort(p.id)))).toEqual([['portId', 'in-use']]);
    expect(issuesOf(await failure(net.allocate(a, [{ portId: p.id }, { portId: p.id }])))).toEqual([
      ['portId', 'duplicate'],
    ]);
    // releasing: another instance's release leaves it alone; its own unbinds and keeps it
    await net.deallocate(b);
    expect((await net.getPort(p.id)).instanceId).toBe(a.id);
    await net.deallocate(a);
    await net.deallocate(a);
    expect(await net.getPort(p.id)).toEqual(p);
    await net.allocate(b, [{ portId: p.id }]);
    await net.deallocate(b, [p.id]);
    await net.deletePort(p.id);
    await net.deletePort(p.id);
    await expect(net.getPort(p.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('re-allocating the ports an instance has returns the same bindings; network requests make new ports', async () => {
    const net = adapter();
    const vm = buildTestInstance();
    const first = await net.allocate(vm, [{ networkId: 'net-a' }, { networkId: 'net-a' }]);
    expect(first[0]!.portId).not.toBe(first[1]!.portId);
    expect(
      await net.allocate(
        vm,
        first.map((p) => ({ portId: p.portId })),
      ),
    ).toEqual(first);
    expect((await net.listPorts({ instanceId: vm.id })).length).toBe(2);
  });

  it('Neutron semantics on deallocate: ports made for a network go, ports made beforehand stay unbound; by id or all', async () => {
    const net = adapter();
    const vm = buildTestInstance();
    const user = await net.createPort({ networkId: 'net-a' });
    const [made1, kept, made2] = await net.allocate(vm, [
      { networkId: 'net-a' },
      { portId: user.id },
      { networkId: 'net-b' },
    ]);
    await net.deallocate(vm, [made1!.portId]);
    expect((await net.listPorts()).map((p) => p.id).sort()).toEqual([kept!.portId, made2!.portId].sort());
    await net.deallocate(vm, ['not-bound-here', made1!.portId]);
    await net.deallocate(vm);
    expect(await net.listPorts()).toEqual([user]);
    expect((await net.listNetworks()).map((n) => n.available)).toEqual([252, 5]);
  });

  it('is all-or-nothing: when one request of several fails, nothing stays allocated or bound', async () => {
    const dir = freshDir();
    const net = adapter(dir);
    const user = await net.createPort({ networkId: 'net-a' });
    const taken = await net.createPort({ networkId: 'net-b' });
    const holder = buildTestInstance();
    await net.allocate(holder, [{ portId: taken.id }]);
    const before = readFileSync(join(dir, 'ports.json'), 'utf8');
    const vm = buildTestInstance();
    for (const tail of [{ networkId: 'net-x' }, { portId: 'nope' }, { portId: taken.id }]) {
      await expect(
        net.allocate(vm, [{ networkId: 'net-a' }, { portId: user.id }, tail]),
      ).rejects.toBeDefined();
      expect(await net.listPorts({ instanceId: vm.id })).toEqual([]);
    }
    // an exhausted subnet in the middle of a batch
    await expect(
      net.allocate(vm, [
        { networkId: 'net-a' },
        ...Array.from({ length: 6 }, () => ({ networkId: 'net-b' })),
      ]),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(readFileSync(join(dir, 'ports.json'), 'utf8')).toBe(before);
    expect((await net.getPort(user.id)).instanceId).toBeUndefined();
  });

  it('never hands out one address or MAC twice under 200 parallel allocations on a /24, and frees them all', async () => {
    const net = adapter(freshDir(), [{ id: 'big', cidr: '10.50.0.0/24' }]);
    const vms = Array.from({ length: 200 }, () => buildTestInstance());
    const results = await Promise.all(vms.map((vm) => net.allocate(vm, [{ networkId: 'big' }])));
    const ips = results.map((r) => r[0]!.ipAddresses![0]!);
    const macs = results.map((r) => r[0]!.macAddress!);
    expect(new Set(ips).size).toBe(200);
    expect(new Set(macs).size).toBe(200);
    expect(
      ips.every(
        (ip) => /^10\.50\.0\.(\d+)$/.test(ip) && !['10.50.0.0', '10.50.0.1', '10.50.0.255'].includes(ip),
      ),
    ).toBe(true);
    // a second adapter over the same directory in this process shares the queue
    const twin = adapter(net.stateDir, [{ id: 'big', cidr: '10.50.0.0/24' }]);
    const more = await Promise.all(
      Array.from({ length: 53 }, (_, i) => (i % 2 ? net : twin).allocate(buildTestInstance(), [{}])),
    );
    expect(new Set([...ips, ...more.map((r) => r[0]!.ipAddresses![0])]).size).toBe(253);
    await expect(net.allocate(buildTestInstance(), [{}])).rejects.toMatchObject({
      code: ErrorCode.Validation,
    });
    await Promise.all(vms.map((vm) => net.deallocate(vm)));
    expect((await net.listNetworks())[0]?.available).toBe(200);
    expect(readdirSync(net.stateDir)).toEqual(['ports.json']); // no temporary file left
  });

  it('persists its ports: a new adapter over the same directory sees the same ports and bindings', async () => {
    const dir = freshDir();
    const vm = buildTestInstance();
    const first = adapter(dir);
    const user = await first.createPort({ networkId: 'net-b' });
    const bindings = await first.allocate(vm, [{ networkId: 'net-a' }, { portId: user.id }]);
    const restarted = adapter(dir);
    expect(await restarted.listPorts()).toEqual(await first.listPorts());
    expect(
      await restarted.allocate(
        vm,
        bindings.map((b) => ({ portId: b.portId })),
      ),
    ).toEqual(bindings);
    // the next address continues after what the first adapter handed out
    expect((await restarted.allocate(buildTestInstance(), [{ networkId: 'net-a' }]))[0]!.ipAddresses).toEqual(
      ['10.20.0.3'],
    );
    await restarted.deallocate(vm);
    expect((await adapter(dir).listPorts({ instanceId: vm.id })).length).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'ports.json'), 'utf8'))).toMatchObject({ version: 1 });
  });

  it('refuses a state file it did not write with a typed storage error', async () => {
    const dir = freshDir();
    const net = adapter(dir);
    await net.createPort({ networkId: 'net-a' });
    writeFileSync(join(dir, 'ports.json'), '{"version":1,"ports":[{"id":"../x"}]}');
    const e = await failure(net.listPorts());
    expect(e).toBeInstanceOf(LocalNetworkStateError);
    expect(e).toMatchObject({ code: ErrorCode.Storage });
    writeFileSync(join(dir, 'ports.json'), 'not json');
    await expect(net.allocate(buildTestInstance(), [{}].slice(1))).resolves.toEqual([]);
    await expect(net.allocate(buildTestInstance(), [{ networkId: 'net-a' }])).rejects.toBeInstanceOf(
      LocalNetworkStateError,
    );
  });
});

describe('LocalNetworkAdapter and hostile input', () => {
  const hostile = [
    "net'; DROP TABLE ports;--",
    '$(reboot)',
    '`id`',
    '<interface type="bridge"/>',
    '{"a":1}',
    'a\u0000b',
    'x'.repeat(10_000),
    '../../etc/passwd',
    '',
    42 as unknown as string,
  ];

  it('refuses it in every id and field with a ValidationError naming the field, writing nothing', async () => {
    const dir = freshDir();
    const net = adapter(dir);
    const vm = buildTestInstance();
    const hostileVm = (id: string) => ({ ...vm, id }) as Instance;
    for (const bad of hostile) {
      const cases: [string, () => Promise<unknown>][] = [
        ['networkId', () => net.allocate(vm, [{ networkId: bad }])],
        ['portId', () => net.allocate(vm, [{ portId: bad }])],
        ['instance.id', () => net.allocate(hostileVm(bad), [{ networkId: 'net-a' }])],
        ['instance.id', () => net.deallocate(hostileVm(bad))],
        ['portId', () => net.deallocate(vm, [bad])],
        ['networkId', () => net.createPort({ networkId: bad })],
        ['ipAddress', () => net.createPort({ networkId: 'net-a', ipAddress: bad })],
        ['macAddress', () => net.createPort({ networkId: 'net-a', macAddress: bad })],
        ['portId', () => net.getPort(bad)],
        ['portId', () => net.deletePort(bad)],
        ['networkId', () => net.listPorts({ networkId: bad })],
        ['instanceId', () => net.listPorts({ instanceId: bad })],
      ];
      for (const [field, call] of cases) {
        const e = await failure(call);
        expect(e, `${field} ${JSON.stringify(bad).slice(0, 40)}`).toBeInstanceOf(ValidationError);
        expect((e as ValidationError).fields).toContain(field);
      }
    }
    await expect(net.allocate(vm, [{ networkId: 'net-a', extra: 'x' } as never])).rejects.toMatchObject({
      fields: ['extra'],
    });
    await expect(net.allocate(vm, [{ networkId: 'net-a', portId: 'p' }])).rejects.toMatchObject({
      fields: ['portId'],
    });
    expect(existsSync(dir)).toBe(false);
  });
});
