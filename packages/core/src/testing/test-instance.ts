import { randomUUID } from 'node:crypto';
import type { Flavor } from '../model/flavor.js';
import type { Instance } from '../model/instance.js';

/** A small flavor for tests: 1 vCPU, 128 MiB, no disk. */
export const tinyTestFlavor: Flavor = Object.freeze({
  id: 'test.tiny',
  name: 'test.tiny',
  vcpus: 1,
  ramMb: 128,
  diskGb: 0,
  resources: {},
  extraSpecs: {},
});

/**
 * Builds an instance record as the engine would hand it to a driver's `spawn` (state building,
 * task spawning). For driver tests that call drivers directly.
 */
export function buildTestInstance(overrides: Partial<Instance> = {}): Instance {
  const now = Date.now();
  return {
    id: randomUUID(),
    name: 'test-instance',
    projectId: 'test-project',
    userId: 'test-user',
    flavor: tinyTestFlavor,
    imageId: 'test-image',
    hostId: 'test-host',
    availabilityZone: null,
    vmState: 'building',
    taskState: 'spawning',
    powerState: 'nostate',
    fault: null,
    metadata: {},
    hints: {},
    createdAt: now,
    updatedAt: now,
    launchedAt: null,
    revision: 0,
    ...overrides,
  };
}
