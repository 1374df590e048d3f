import type { EngineDeps } from './engine-context.js';

/**
 * The key under which an engine hands its collaborators (raw stores, registry, quota engine) to
 * test code through `internalsOf` in `@nova-lfs/core/testing`. Not part of the public surface:
 * embedders use the validated facades (`compute.flavors`, `compute.quotas`, `compute.hosts`, ...).
 */
export const engineInternals: unique symbol = Symbol('nova-lfs.engine.internals');
export type { EngineDeps };
