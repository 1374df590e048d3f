import type { ComputeEngine } from '../engine/compute-engine.js';
import { type EngineDeps, engineInternals } from '../engine/internals.js';

/**
 * An engine's collaborators (raw stores, registry, quota engine, unit of work, event log), for
 * tests that check invariants the public surface does not show (leaked claims, quota sums,
 * pending actions). Never for production code: it bypasses validation and units of work.
 */
export function internalsOf(engine: ComputeEngine): EngineDeps & { readonly openWatches: number } {
  return engine[engineInternals]();
}
