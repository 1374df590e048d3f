import { rm } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { ErrorCode, type Flavor, type Image, type ImageService, type Instance } from '@nova-lfs/core';
import { buildTestInstance } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectCgroupVersion } from './cgroup-limits.js';
import { LxcDriver } from './lxc-driver.js';
import { available, busyboxImages, removeHostContainers, tempLxcPath } from './lxc-env.test-helper.js';
import { containerName } from './names.js';

const HOST = 'limits';
const flavor = (over: Partial<Flavor> = {}): Flavor => ({
  id: 'lxc.small',
  name: 'lxc.small',
  vcpus: 1,
  ramMb: 64,
  diskGb: 0,
  resources: {},
  extraSpecs: {},
  ...over,
});

describe.skipIf(!available)('LxcDriver limits inside real containers (cgroup v1 here)', () => {
  const lxcPath = tempLxcPath();
  const driver = new LxcDriver({ hostId: HOST, lxcPath, pidsLimit: 64 });
  let images: ImageService;
  let image: Image;
  let imageDir: string;
  let version: string | undefined;

  const spawn = async (f: Flavor): Promise<Instance> => {
    const instance = buildTestInstance({ flavor: f, imageId: image.id, hostId: HOST });
    await driver.spawn({ instance, flavor: f, image, images, ports: [], volumes: [] });
    return instance;
  };
  /** Runs a shell line inside the container (lxc-attach, clear environment) and returns its stdout. */
  const sh = async (i: Instance, line: string): Promise<string> =>
    (await driver.tools.run('lxc-attach', containerName(i.id), ['--clear-env', '--', '/bin/sh', '-c', line]))
      .stdout;

  beforeAll(async () => {
    ({ images, image, dir: imageDir } = await busyboxImages());
    version = await detectCgroupVersion();
  });
  afterAll(async () => {
    await driver.close();
    await removeHostContainers(lxcPath, HOST);
    await rm(imageDir, { recursive: true, force: true });
  });

  it('detects this machine as cgroup v1 (hybrid: the memory controller is on its own hierarchy)', () => {
    expect(version).toBe('v1');
  });

  it('holds memory to the flavor: the container reads its 64 MiB limit, a 128 MiB allocation is killed, 16 MiB is not', async () => {
    const i = await spawn(flavor());
    const limit = await sh(i, 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes');
    expect(Number(limit.trim())).toBe(64 * 2 ** 20);
    // busybox dd allocates its whole block: bs=128M needs 128 MiB of memory
    expect(await sh(i, 'dd if=/dev/zero of=/dev/null bs=16M count=1 2>/dev/null; echo rc=$?')).toContain(
      'rc=0',
    );
    expect(await sh(i, 'dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null; echo rc=$?')).toContain(
      'rc=137',
    );
    const oom = await sh(i, 'cat /sys/fs/cgroup/memory/memory.oom_control');
    expect(Number(/oom_kill (\d+)/.exec(oom)?.[1])).toBeGreaterThanOrEqual(1);
    expect(await driver.getPowerState(i)).toBe('running'); // only the hog died
    await driver.destroy(i);
  });

  /**
   * One busy loop in the container for 2 s: the CPU share it got (cpuacct usage / uptime, both
   * read inside) and how many CFS periods the kernel throttled it in (`cpu.stat` nr_throttled).
   */
  const busyLoop = async (i: Instance): Promise<{ share: number; throttled: number }> => {
    const usage = '/sys/fs/cgroup/cpuacct/cpuacct.usage';
    const throttled = "sed -n 's/^nr_throttled //p' /sys/fs/cgroup/cpu/cpu.stat";
    const out = await sh(
      i,
      `a=$(cat ${usage}); n=$(${throttled}); t=$(cut -d' ' -f1 /proc/uptime); timeout 2 sh -c "while :; do :; done"; b=$(cat ${usage}); m=$(${throttled}); u=$(cut -d' ' -f1 /proc/uptime); echo $a $b $t $u $n $m`,
    );
    const [a, b, t, u, n, m] = out.trim().split(' ').map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    return { share: (b - a) / 1e9 / (u - t), throttled: m - n };
  };

  it('gives a CPU loop its quota: vcpus=1 reads a 100 ms quota per 100 ms; quota:cpu_quota=10000 throttles a busy loop to a tenth of a CPU', async () => {
    const whole = await spawn(flavor());
    expect(
      (await sh(whole, 'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us')).split(
        /\s+/,
      ),
    ).toEqual(['100000', '100000', '']);
    const baseline = await busyLoop(whole);
    await driver.destroy(whole);

    const half = await spawn(
      flavor({ extraSpecs: { 'quota:cpu_quota': '10000', 'quota:cpu_period': '100000' } }),
    );
    expect((await sh(half, 'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us')).trim()).toBe('10000');
    const limited = await busyLoop(half);
    console.info(
      `LXC CPU quota, one busy loop for 2 s (load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} CPUs): ` +
        `quota 1.0 (same run): ${baseline.share.toFixed(2)} CPU, throttled in ${baseline.throttled} periods; ` +
        `quota 0.1: ${limited.share.toFixed(2)} CPU, throttled in ${limited.throttled} periods`,
    );
    // the kernel enforced the quota (a single loop can never exceed a whole-CPU quota) ...
    expect(limited.throttled).toBeGreaterThan(0);
    // ... and held the loop to about a tenth of a CPU (a quota below what a busy machine leaves
    // one loop anyway, so that the kernel, not the load, decides)
    expect(limited.share).toBeGreaterThan(0.02);
    expect(limited.share).toBeLessThan(0.16);
    await driver.destroy(half);
  });

  it('limits processes to pidsLimit (pids.max inside the container)', async () => {
    const i = await spawn(flavor());
    expect((await sh(i, 'cat /sys/fs/cgroup/pids/pids.max')).trim()).toBe('64');
    await driver.destroy(i);
  });

  it('refuses a malformed quota extra spec with reschedule: false, leaving no container', async () => {
    const f = flavor({ extraSpecs: { 'quota:cpu_quota': '1\nlxc.cap.drop = ' } });
    const instance = buildTestInstance({ flavor: f, imageId: image.id, hostId: HOST });
    await expect(
      driver.spawn({ instance, flavor: f, image, images, ports: [], volumes: [] }),
    ).rejects.toMatchObject({ code: ErrorCode.Driver, details: { reschedule: false, retryable: false } });
    expect(await driver.getPowerState(instance)).toBe('nostate');
  });
});
