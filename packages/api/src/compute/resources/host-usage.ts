import type { ComputeEngine, Host, Instance } from '@nova-lfs/core';

/** What a hypervisor shows: capacity and usage of one host as Nova's compute node reports them. */
export interface HostUsage {
  readonly host: Host;
  readonly instances: readonly Instance[];
  readonly vcpus: number;
  readonly vcpusUsed: number;
  readonly memoryMb: number;
  readonly memoryMbUsed: number;
  readonly localGb: number;
  readonly localGbUsed: number;
  /** Instances with a task in progress (Nova's `current_workload`). */
  readonly workload: number;
}

function total(host: Host, rc: string): { total: number; reserved: number } {
  const inv = host.inventory[rc];
  return { total: inv?.total ?? 0, reserved: inv?.reserved ?? 0 };
}

/**
 * The usage of a host: the flavors of the instances placed on it summed (the engine keeps no
 * other per-host total), plus what the host reserves for itself, as Nova counts
 * `memory_mb_used` and `local_gb_used` (reserved included) and `vcpus_used` (reserved not).
 */
export async function hostUsage(engine: ComputeEngine, host: Host): Promise<HostUsage> {
  const instances = await engine.list({ hostId: host.id });
  let vcpus = 0;
  let ram = 0;
  let disk = 0;
  let workload = 0;
  for (const i of instances) {
    vcpus += i.flavor.vcpus;
    ram += i.flavor.ramMb;
    disk += i.flavor.diskGb;
    if (i.taskState !== null) workload++;
  }
  const cpu = total(host, 'VCPU');
  const mem = total(host, 'MEMORY_MB');
  const gb = total(host, 'DISK_GB');
  return {
    host,
    instances,
    vcpus: cpu.total,
    vcpusUsed: vcpus,
    memoryMb: mem.total,
    memoryMbUsed: mem.reserved + ram,
    localGb: gb.total,
    localGbUsed: gb.reserved + disk,
    workload,
  };
}
