import type { NetworkAdapter } from '../ports/network.js';
import type { VolumeAdapter } from '../ports/volume.js';

/** Network adapter used when none is configured: no ports. */
export const noNetworkAdapter: NetworkAdapter = Object.freeze({
  allocate: async () => [],
  deallocate: async () => {},
});

/** Volume adapter used when none is configured: no volumes. */
export const noVolumeAdapter: VolumeAdapter = Object.freeze({
  connect: async () => [],
  disconnect: async () => {},
});
