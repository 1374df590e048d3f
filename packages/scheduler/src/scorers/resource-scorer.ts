import type { HostState } from '../host-state.js';
import type { ScorePlugin } from '../plugin.js';

/**
 * Raw score = free amount of one resource class after the claims already on the host (Nova's
 * RAM/CPU/Disk weighers). With a positive weight the scheduler spreads; with a negative weight it
 * packs (bin-packing).
 */
export class ResourceScorer implements ScorePlugin {
  constructor(
    readonly name: string,
    readonly resourceClass: string,
  ) {}
  score(_ctx: unknown, host: HostState): number {
    switch (this.resourceClass) {
      case 'MEMORY_MB':
        return host.freeMemory;
      case 'VCPU':
        return host.freeVcpu;
      case 'DISK_GB':
        return host.freeDisk;
      default:
        return host.free(this.resourceClass);
    }
  }
}

/** Free RAM scorer (`RamScorer`). */
export const ramScorer = (): ResourceScorer => new ResourceScorer('RamScorer', 'MEMORY_MB');
/** Free vCPU scorer (`VcpuScorer`). */
export const vcpuScorer = (): ResourceScorer => new ResourceScorer('VcpuScorer', 'VCPU');
/** Free disk scorer (`DiskScorer`). */
export const diskScorer = (): ResourceScorer => new ResourceScorer('DiskScorer', 'DISK_GB');
