import { atLeast, type Microversion } from '../microversion.js';
import type { ComputeNode } from './compute-nodes.js';
import type { HostUsage } from './host-usage.js';

/**
 * The version Nova shows for the hypervisor: Nova LFS 0.1.0 encoded as Nova encodes versions
 * (major * 1e6 + minor * 1e3 + patch); drivers report none of their own.
 */
const hypervisorVersion = 1000;

/** The id of a node or service at `v`: an integer below 2.53, a uuid from 2.53. */
export function novaId(ids: { num: number; uuid: string }, v: Microversion): number | string {
  return atLeast(v, 53) ? ids.uuid : ids.num;
}

/** The hypervisor of a listing: id, hostname, state and status. */
export function hypervisorSummary(node: ComputeNode, v: Microversion): Record<string, unknown> {
  return {
    id: novaId(node.hypervisor, v),
    hypervisor_hostname: node.host.name,
    state: node.host.up ? 'up' : 'down',
    status: node.host.enabled ? 'enabled' : 'disabled',
  };
}

function cpuInfo(usage: HostUsage): Record<string, unknown> {
  const features = usage.host.traits
    .filter((t) => t.startsWith('HW_CPU_X86_'))
    .map((t) => t.slice('HW_CPU_X86_'.length).toLowerCase());
  return {
    arch: usage.host.architecture,
    model: null,
    vendor: null,
    features,
    topology: { cores: usage.vcpus, threads: 1, sockets: 1 },
  };
}

/** The servers of a hypervisor, as `with_servers` and `/{pattern}/servers` show them. */
export function hypervisorServers(usage: HostUsage): { name: string; uuid: string }[] {
  return usage.instances.map((i) => ({ name: i.name, uuid: i.id }));
}

/**
 * A hypervisor in detail at `v`: `cpu_info` a JSON string below 2.28 and an object from 2.28;
 * ids uuids from 2.53; from 2.88 the capacity fields are gone and `uptime` is inline (null:
 * drivers do not report one).
 */
export function hypervisorDetail(
  node: ComputeNode,
  usage: HostUsage,
  v: Microversion,
  withServers = false,
): Record<string, unknown> {
  const h = node.host;
  const out: Record<string, unknown> = {
    ...hypervisorSummary(node, v),
    hypervisor_type: h.hypervisorType,
    hypervisor_version: hypervisorVersion,
    host_ip: '127.0.0.1',
    service: { id: novaId(node.service, v), host: h.id, disabled_reason: h.disabledReason },
  };
  if (atLeast(v, 88)) {
    out.uptime = null;
  } else {
    const info = cpuInfo(usage);
    Object.assign(out, {
      vcpus: usage.vcpus,
      memory_mb: usage.memoryMb,
      local_gb: usage.localGb,
      vcpus_used: usage.vcpusUsed,
      memory_mb_used: usage.memoryMbUsed,
      local_gb_used: usage.localGbUsed,
      free_ram_mb: usage.memoryMb - usage.memoryMbUsed,
      free_disk_gb: usage.localGb - usage.localGbUsed,
      current_workload: usage.workload,
      running_vms: usage.instances.length,
      disk_available_least: Math.max(0, usage.localGb - usage.localGbUsed),
      cpu_info: atLeast(v, 28) ? info : JSON.stringify(info),
    });
  }
  if (withServers && usage.instances.length > 0) out.servers = hypervisorServers(usage);
  return out;
}

/** Nova's `hypervisor_statistics`: the sums over every hypervisor (below 2.88). */
export function hypervisorStatistics(usages: readonly HostUsage[]): Record<string, number> {
  const sum = (f: (u: HostUsage) => number) => usages.reduce((n, u) => n + f(u), 0);
  return {
    count: usages.length,
    vcpus: sum((u) => u.vcpus),
    memory_mb: sum((u) => u.memoryMb),
    local_gb: sum((u) => u.localGb),
    vcpus_used: sum((u) => u.vcpusUsed),
    memory_mb_used: sum((u) => u.memoryMbUsed),
    local_gb_used: sum((u) => u.localGbUsed),
    free_ram_mb: sum((u) => u.memoryMb - u.memoryMbUsed),
    free_disk_gb: sum((u) => u.localGb - u.localGbUsed),
    current_workload: sum((u) => u.workload),
    running_vms: sum((u) => u.instances.length),
    disk_available_least: sum((u) => Math.max(0, u.localGb - u.localGbUsed)),
  };
}
