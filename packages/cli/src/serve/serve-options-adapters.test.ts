import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  networkAdapterOf,
  parseServeArgs,
  type ServeOptions,
  serveHelp,
  UsageError,
} from './serve-options.js';

const base = ['--data-dir', '/srv/nlfs', '--fake-hosts', '1'];
const parse = (...args: string[]) => parseServeArgs([...base, ...args], {}) as ServeOptions;
const refused = (args: string[], message: RegExp) => {
  expect(() => parseServeArgs([...base, ...args], {})).toThrow(UsageError);
  expect(() => parseServeArgs([...base, ...args], {})).toThrow(message);
};

describe('nova-lfs serve --network, --volumes, --volume-dir', () => {
  it('documents them in --help', () => {
    for (const flag of [
      '--network ID=CIDR[,NAME]',
      '--volumes',
      '--volume-dir VDIR',
      'nova-lfs volume create',
    ])
      expect(serveHelp).toContain(flag);
  });

  it('takes no adapter by default, as before', () => {
    const o = parse();
    expect(o.networks).toEqual([]);
    expect(o.volumeDir).toBeUndefined();
    expect(networkAdapterOf(o)).toBeUndefined();
  });

  it('parses repeated --network ID=CIDR[,NAME] into a LocalNetworkAdapter with state in DIR/network', async () => {
    const o = parse('--network', 'private=10.70.0.0/24', '--network', 'storage=10.71.0.0/28,Storage net, 2');
    expect(o.networks).toEqual([
      { id: 'private', cidr: '10.70.0.0/24' },
      { id: 'storage', cidr: '10.71.0.0/28', name: 'Storage net, 2' },
    ]);
    const adapter = networkAdapterOf(o)!;
    expect(adapter.stateDir).toBe(join('/srv/nlfs', 'network'));
    expect((await adapter.listNetworks()).map((n) => [n.id, n.name, n.cidr, n.gateway])).toEqual([
      ['private', 'private', '10.70.0.0/24', '10.70.0.1'],
      ['storage', 'Storage net, 2', '10.71.0.0/28', '10.71.0.1'],
    ]);
  });

  it('refuses hostile or invalid --network values with a UsageError naming --network', () => {
    for (const bad of [
      'private',
      '=10.0.0.0/24',
      'private=',
      'net_a=10.0.0.0/24',
      'net.a=10.0.0.0/24',
      '-net=10.0.0.0/24',
      "x';DROP TABLE=10.0.0.0/24",
      '../../etc=10.0.0.0/24',
      'a=10.0.0.0/24;reboot',
      'a=10.0.0.0/24,\u0000',
      'a=10.0.0.0/24,new\nline',
      `${'a'.repeat(65)}=10.0.0.0/24`,
      `a=10.0.0.0/24,${'n'.repeat(256)}`,
      'a=fd00::/64',
    ])
      refused([`--network=${bad}`], /^--network: must be ID=CIDR/);
    // well-formed, refused by the adapter's rules: the CIDR, a network given twice
    refused(['--network', 'a=10.0.0.1/24'], /^--network: a=10\.0\.0\.1\/24: cidr .*network address/);
    refused(['--network', 'a=10.0.0.0/31'], /^--network: a=10\.0\.0\.0\/31: cidr/);
    refused(['--network', 'a=10.0.0.0/4'], /^--network: a=10\.0\.0\.0\/4: cidr/);
    refused(['--network', 'a=300.0.0.0/24'], /^--network: a=300\.0\.0\.0\/24: cidr/);
    refused(
      ['--network', 'a=10.0.0.0/24', '--network', 'a=10.1.0.0/24'],
      /^--network: a=10\.1\.0\.0\/24: id .*twice/,
    );
    refused(['--network'], /--network/);
  });

  it('--volumes serves DIR/volumes, --volume-dir VDIR serves VDIR; not both', () => {
    expect(parse('--volumes').volumeDir).toBe(join('/srv/nlfs', 'volumes'));
    expect(parse('--volume-dir', '/srv/vols').volumeDir).toBe('/srv/vols');
    refused(['--volumes', '--volume-dir', '/srv/vols'], /^--volumes, --volume-dir: give one/);
    refused(['--volume-dir', 'a\u0000b'], /^--volume-dir: must not contain NUL/);
    refused(['--volume-dir', ''], /^--volume-dir: must be a directory/);
    refused(['--volumes=yes'], /volumes/);
  });

  it('takes them with --bus nats too (the adapters run in the control plane)', () => {
    const o = parseServeArgs(
      ['--data-dir', '/srv/nlfs', '--bus', 'nats', '--network', 'private=10.70.0.0/24', '--volumes'],
      {},
    ) as ServeOptions;
    expect(o.networks).toHaveLength(1);
    expect(o.volumeDir).toBe(join('/srv/nlfs', 'volumes'));
  });
});
