import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DriverError, type Flavor } from '@nova-lfs/core';

/**
 * Which cgroup interface limits containers on this host: `v1` (legacy or hybrid: the memory
 * controller on its own hierarchy, `lxc.cgroup.*` keys) or `v2` (unified: `lxc.cgroup2.*` keys).
 */
export type CgroupVersion = 'v1' | 'v2';

/**
 * Detects the host's cgroup version from the mounted hierarchies under `root`: a v1 memory
 * controller (`memory/memory.limit_in_bytes`) means `v1`, even on a hybrid host whose v2 tree
 * holds a few controllers (LXC ignores `lxc.cgroup2.*` keys there, with a warning); a unified
 * root listing `memory` in `cgroup.controllers` means `v2`.
 * @returns undefined when neither is found (no memory controller: limits cannot be applied).
 */
export async function detectCgroupVersion(root = '/sys/fs/cgroup'): Promise<CgroupVersion | undefined> {
  try {
    await access(join(root, 'memory', 'memory.limit_in_bytes'));
    return 'v1';
  } catch {
    // not v1
  }
  try {
    const controllers = await readFile(join(root, 'cgroup.controllers'), 'utf8');
    if (controllers.split(/\s+/).includes('memory')) return 'v2';
  } catch {
    // not v2 either
  }
  return undefined;
}

/** What the limits are made of (from the flavor, its extra specs and the driver's settings). */
export interface ContainerLimits {
  /** Memory limit in bytes (the flavor's `ramMb`). */
  readonly memoryBytes: number;
  /** CFS quota in µs per period. */
  readonly cpuQuotaUs: number;
  /** CFS period in µs. */
  readonly cpuPeriodUs: number;
  /** Maximum number of processes. */
  readonly pidsMax: number;
}

/** Default CFS period (the kernel's): 100 ms. */
export const DEFAULT_CPU_PERIOD_US = 100_000;

function specInt(flavor: Flavor, key: string, min: number, max: number): number | undefined {
  const raw = flavor.extraSpecs[key];
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max)
    throw new DriverError(
      { driver: 'lxc', operation: 'limits', retryable: false, reschedule: false },
      `flavor ${flavor.id} extra spec ${key} must be an integer from ${min} to ${max}`,
    );
  return Number(raw);
}

/**
 * The limits of a flavor: memory = `ramMb` MiB; CPU = `vcpus` whole CPUs (quota = vcpus ×
 * period), unless Nova's `quota:cpu_quota` / `quota:cpu_period` extra specs (µs, as in Nova's
 * libvirt driver) set them; pids = `pidsMax`.
 * @throws DriverError (`retryable: false, reschedule: false`) for a malformed quota extra spec.
 */
export function limitsOf(flavor: Flavor, pidsMax: number): ContainerLimits {
  const cpuPeriodUs = specInt(flavor, 'quota:cpu_period', 1000, 1_000_000) ?? DEFAULT_CPU_PERIOD_US;
  const cpuQuotaUs = specInt(flavor, 'quota:cpu_quota', 1000, 2 ** 40) ?? flavor.vcpus * cpuPeriodUs;
  return { memoryBytes: flavor.ramMb * 2 ** 20, cpuQuotaUs, cpuPeriodUs, pidsMax };
}

/**
 * The container config keys that apply `limits` on a host of the given cgroup version, in the
 * order LXC must write them (v1: the memory limit before memory+swap, so swap cannot go past it).
 * `swapAccounting` says whether the v1 host has `memory.memsw.*` (then memory+swap is held to the
 * same limit: no swapping around it).
 */
export function cgroupConfig(
  limits: ContainerLimits,
  version: CgroupVersion,
  options: { swapAccounting?: boolean } = {},
): Array<readonly [key: string, value: string]> {
  if (version === 'v2') {
    return [
      ['lxc.cgroup2.memory.max', String(limits.memoryBytes)],
      ['lxc.cgroup2.memory.swap.max', '0'],
      ['lxc.cgroup2.cpu.max', `${limits.cpuQuotaUs} ${limits.cpuPeriodUs}`],
      ['lxc.cgroup2.pids.max', String(limits.pidsMax)],
    ];
  }
  return [
    ['lxc.cgroup.memory.limit_in_bytes', String(limits.memoryBytes)],
    ...(options.swapAccounting
      ? [['lxc.cgroup.memory.memsw.limit_in_bytes', String(limits.memoryBytes)] as const]
      : []),
    ['lxc.cgroup.cpu.cfs_period_us', String(limits.cpuPeriodUs)],
    ['lxc.cgroup.cpu.cfs_quota_us', String(limits.cpuQuotaUs)],
    ['lxc.cgroup.pids.max', String(limits.pidsMax)],
  ];
}

/** Whether a v1 host accounts swap per cgroup (`memory.memsw.limit_in_bytes` exists). */
export async function hasSwapAccounting(root = '/sys/fs/cgroup'): Promise<boolean> {
  try {
    await access(join(root, 'memory', 'memory.memsw.limit_in_bytes'));
    return true;
  } catch {
    return false;
  }
}
