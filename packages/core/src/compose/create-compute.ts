import 'reflect-metadata';
import { type DependencyContainer, container as rootContainer } from 'tsyringe';
import { ComputeEngine } from '../engine/compute-engine.js';
import type { HostBinding } from '../engine/host-registry.js';
import { type CoreOptions, registerCore } from './register-core.js';

/** Options of {@link createCompute}. */
export interface ComputeOptions extends CoreOptions {
  /** Hosts to add before start-up reconciliation. */
  readonly hosts?: readonly HostBinding[];
  /** Parent container (a child is created; default the global tsyringe container). */
  readonly container?: DependencyContainer;
  /** Run start-up reconciliation (default true). */
  readonly reconcile?: boolean;
}

/**
 * Composes an engine with sensible defaults (in-memory stores, counting quota, local image
 * cache) around the given scheduler and hosts, reconciles, and returns it:
 *
 * ```ts
 * const compute = await createCompute({
 *   scheduler: createScheduler(),
 *   flavors: [{ id: 'm1.small', vcpus: 1, ramMb: 2048 }],
 *   hosts: [{ id: 'node-1', driver: new DockerDriver() }],
 * });
 * const [vm] = await compute.create({ name: 'web', projectId: 'demo', userId: 'me', flavorId: 'm1.small', imageId: 'busybox' });
 * ```
 */
export async function createCompute(options: ComputeOptions): Promise<ComputeEngine> {
  const container = (options.container ?? rootContainer).createChildContainer();
  await registerCore(container, options);
  const engine = container.resolve(ComputeEngine);
  for (const binding of options.hosts ?? []) await engine.addHost(binding);
  if (options.reconcile !== false) await engine.start();
  return engine;
}
