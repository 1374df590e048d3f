import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, type Flavor } from '@nova-lfs/core';
import { afterAll, describe, expect, it } from 'vitest';
import { cgroupConfig, detectCgroupVersion, limitsOf } from './cgroup-limits.js';
import {
  type ContainerConfigSpec,
  configLine,
  decodeTag,
  encodeTag,
  parseConfig,
  readTags,
  renderContainerConfig,
} from './container-config.js';
import { LxcErrorCode } from './errors.js';
import { containerName, hostnameOf, instanceIdOf } from './names.js';
import { powerStateOf } from './power-state.js';

const flavor: Flavor = {
  id: 'f',
  name: 'f',
  vcpus: 2,
  ramMb: 256,
  diskGb: 0,
  resources: {},
  extraSpecs: {},
};
const id = '0190b3a4-7c2e-7d1a-9f00-123456789abc';
const spec = (over: Partial<ContainerConfigSpec> = {}): ContainerConfigSpec => ({
  hostname: 'web-1',
  rootfs: `dir:/var/lib/lxc/nova-${id}/rootfs`,
  consoleLogPath: `/var/lib/lxc/nova-${id}/console.log`,
  bootScriptPath: `/var/lib/lxc/nova-${id}/boot.sh`,
  consoleLogBytes: 1 << 20,
  instanceId: id,
  projectId: 'demo',
  hostId: 'lxc-1',
  cgroupVersion: 'v1',
  limits: cgroupConfig(limitsOf(flavor, 1024), 'v1'),
  ...over,
});

describe('container config (unit)', () => {
  const hostile = 'a = b\nlxc.mount.entry = / host none bind 0 0\r\n# c\u0000d %41';

  it('refuses a value with a line break, carriage return or NUL, and keys that are not lxc.*', () => {
    for (const v of ['x\ny', 'x\ry', 'x\u0000y', ' padded'])
      expect(() => configLine('lxc.uts.name', v)).toThrow(
        expect.objectContaining({ code: LxcErrorCode.ConfigValue }),
      );
    expect(() => configLine('lxc.uts.name\nlxc.x', 'v')).toThrow();
    expect(() => configLine('other.key', 'v')).toThrow();
    expect(configLine('lxc.uts.name', 'web-1')).toBe('lxc.uts.name = web-1');
  });

  it('records project and host percent-encoded, one line each, and reads them back exactly', () => {
    const text = renderContainerConfig(spec({ projectId: hostile, hostId: `h=${hostile}` }));
    const env = parseConfig(text).filter(([k]) => k === 'lxc.environment');
    expect(env).toHaveLength(3);
    expect(parseConfig(text).filter(([k]) => k === 'lxc.mount.entry')).toHaveLength(2);
    // the hostile text stayed inside its value: every line is the driver's comment or one of its keys
    const lines = text.split('\n').filter(Boolean);
    expect(lines.slice(1).every((l) => /^lxc\.[a-z0-9_.]+ = \S/.test(l))).toBe(true);
    expect(lines).toHaveLength(renderContainerConfig(spec()).split('\n').filter(Boolean).length);
    expect(readTags(text)).toEqual({ instanceId: id, projectId: hostile, hostId: `h=${hostile}` });
    expect(encodeTag(hostile)).not.toMatch(/[\s=#\0]/);
    expect(decodeTag('%E0%A4%A')).toBeUndefined();
  });

  it('writes no network, the rootfs, the console log, the uts name, SIGTERM as halt and the boot script as init', () => {
    const keys = new Map(parseConfig(renderContainerConfig(spec())));
    expect(keys.get('lxc.net.0.type')).toBe('empty');
    expect(keys.get('lxc.rootfs.path')).toBe(`dir:/var/lib/lxc/nova-${id}/rootfs`);
    expect(keys.get('lxc.console.logfile')).toBe(`/var/lib/lxc/nova-${id}/console.log`);
    expect(keys.get('lxc.uts.name')).toBe('web-1');
    expect(keys.get('lxc.signal.halt')).toBe('SIGTERM');
    expect(keys.get('lxc.init.cmd')).toBe('/bin/sh /dev/.nova-lfs-boot');
    expect(keys.get('lxc.mount.auto')).toContain('cgroup:mixed:force');
  });

  it('v1: memory limit (before memory+swap when swap is accounted), CFS period and quota, pids', () => {
    expect(cgroupConfig(limitsOf(flavor, 512), 'v1', { swapAccounting: true })).toEqual([
      ['lxc.cgroup.memory.limit_in_bytes', String(256 * 2 ** 20)],
      ['lxc.cgroup.memory.memsw.limit_in_bytes', String(256 * 2 ** 20)],
      ['lxc.cgroup.cpu.cfs_period_us', '100000'],
      ['lxc.cgroup.cpu.cfs_quota_us', '200000'],
      ['lxc.cgroup.pids.max', '512'],
    ]);
  });

  it('v2 (unit-tested only: this machine is v1): the lxc.cgroup2.* keys, and v2 device rules', () => {
    const limits = limitsOf(
      { ...flavor, extraSpecs: { 'quota:cpu_quota': '50000', 'quota:cpu_period': '200000' } },
      64,
    );
    expect(cgroupConfig(limits, 'v2')).toEqual([
      ['lxc.cgroup2.memory.max', String(256 * 2 ** 20)],
      ['lxc.cgroup2.memory.swap.max', '0'],
      ['lxc.cgroup2.cpu.max', '50000 200000'],
      ['lxc.cgroup2.pids.max', '64'],
    ]);
    const keys = parseConfig(
      renderContainerConfig(spec({ cgroupVersion: 'v2', limits: cgroupConfig(limits, 'v2') })),
    ).map(([k]) => k);
    expect(keys).toContain('lxc.cgroup2.devices.deny');
    expect(keys.some((k) => k.startsWith('lxc.cgroup.'))).toBe(false);
  });

  it('refuses malformed quota extra specs with reschedule: false', () => {
    for (const bad of ['-1', '1.5', '10', 'x', '1\n2'])
      expect(() => limitsOf({ ...flavor, extraSpecs: { 'quota:cpu_quota': bad } }, 64)).toThrow(
        expect.objectContaining({
          code: ErrorCode.Driver,
          details: expect.objectContaining({ reschedule: false }),
        }),
      );
  });

  it('names containers from uuids only; host names are sanitized display names', () => {
    expect(containerName(id.toUpperCase())).toBe(`nova-${id}`);
    expect(() => containerName('../x')).toThrow(expect.objectContaining({ code: ErrorCode.Driver }));
    expect(instanceIdOf(`nova-${id}`)).toBe(id);
    expect(instanceIdOf('nova-x')).toBeUndefined();
    expect(hostnameOf('My Web_Server.1 = x\n', id)).toBe('my-web-server-1-x');
    expect(hostnameOf('===\n', id)).toBe('nova-0190b3a4');
    expect(hostnameOf('a'.repeat(100), id)).toHaveLength(63);
  });

  it('maps LXC states to power states', () => {
    expect(['RUNNING', 'FROZEN', 'STOPPED', 'ABORTING', 'WHAT'].map(powerStateOf)).toEqual([
      'running',
      'paused',
      'shutdown',
      'crashed',
      'nostate',
    ]);
  });
});

describe('cgroup version detection (unit, fake hierarchies)', () => {
  const dirs: string[] = [];
  const tree = async (files: Record<string, string>): Promise<string> => {
    const root = await mkdtemp(join(tmpdir(), 'nlfs-cg-'));
    dirs.push(root);
    for (const [path, text] of Object.entries(files)) {
      await mkdir(join(root, path, '..'), { recursive: true });
      await writeFile(join(root, path), text);
    }
    return root;
  };
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('v1 when a memory controller hierarchy exists (also on a hybrid host), v2 on a unified root with memory, else none', async () => {
    expect(
      await detectCgroupVersion(
        await tree({ 'memory/memory.limit_in_bytes': 'max', 'unified/cgroup.controllers': '' }),
      ),
    ).toBe('v1');
    expect(
      await detectCgroupVersion(await tree({ 'cgroup.controllers': 'cpuset cpu io memory pids\n' })),
    ).toBe('v2');
    expect(await detectCgroupVersion(await tree({ 'cgroup.controllers': 'hugetlb\n' }))).toBeUndefined();
  });
});
