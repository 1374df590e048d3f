import type { Clock } from '@nova-lfs/core';
import { type ClaimStore, createToken, type SchedulerDeps } from '@nova-lfs/core/ports';
import type { DependencyContainer } from 'tsyringe';
import type { SchedulerPlugin } from './plugin.js';
import { PluginScheduler } from './plugin-scheduler.js';
import {
  type BuiltinPluginOptions,
  binpackProfile,
  builtinRegistry,
  resolveProfile,
  type SchedulerProfile,
  spreadProfile,
} from './profile.js';
import type { PluginRegistry } from './registry.js';

/** Options of {@link createScheduler}. */
export interface SchedulerOptions extends BuiltinPluginOptions {
  /** `'spread'` (default), `'binpack'`, or a profile of your own. */
  readonly profile?: 'spread' | 'binpack' | SchedulerProfile;
  /** Your own plugins, registered next to the built-ins (a name clash is an error). */
  readonly plugins?: readonly SchedulerPlugin[];
  /** Claim persistence (default: none; `createCompute` passes its claim store). */
  readonly claims?: ClaimStore;
  readonly clock?: Clock;
  readonly random?: () => number;
}

/** The registry every scheduler built from these options uses: built-ins plus `plugins`. */
export function schedulerRegistry(options: SchedulerOptions = {}): PluginRegistry {
  const registry = builtinRegistry(options);
  for (const p of options.plugins ?? []) registry.register(p);
  return registry;
}

/**
 * The profile to resolve: a built-in one gains the opt-in MaxInFlightBuilds filter when its limit
 * is set (`maxInFlightBuilds`); a profile of your own is used as given.
 */
function profileOf(options: SchedulerOptions): SchedulerProfile {
  const p = options.profile;
  if (typeof p === 'object') return p;
  const builtin = p === 'binpack' ? binpackProfile : spreadProfile;
  if (options.maxInFlightBuilds === undefined || builtin.filters.includes('MaxInFlightBuilds'))
    return builtin;
  return { ...builtin, filters: [...builtin.filters, 'MaxInFlightBuilds'] };
}

/**
 * Builds a scheduler. Pass it to `createCompute({ scheduler: createScheduler(...) })`, or pass
 * `schedulerFactory(options)` so that it persists claims in the engine's claim store.
 * @throws DuplicatePluginError, UnknownPluginError, InvalidProfileError
 */
export function createScheduler(options: SchedulerOptions = {}): PluginScheduler {
  const profile = resolveProfile(schedulerRegistry(options), profileOf(options));
  return new PluginScheduler({
    profile,
    ...(options.claims ? { claims: options.claims } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.random ? { random: options.random } : {}),
  });
}

/** A factory for `createCompute({ scheduler })` that wires the engine's claim store in. */
export function schedulerFactory(options: SchedulerOptions = {}): (deps: SchedulerDeps) => PluginScheduler {
  return (deps) => createScheduler({ ...options, claims: options.claims ?? deps.claims });
}

/** DI token of extra scheduler plugins (register several with `useValue` arrays). */
export const schedulerPluginsToken = createToken<readonly SchedulerPlugin[]>('scheduler.plugins');
/** DI token of the scheduler options. */
export const schedulerOptionsToken = createToken<SchedulerOptions>('scheduler.options');

/**
 * Registers the scheduler's options and plugins in a container, so that an embedding can add its
 * own filters and scorers through DI, then returns a factory for `createCompute({ scheduler })`
 * that reads them from the container.
 */
export function registerScheduler(
  container: DependencyContainer,
  options: SchedulerOptions = {},
): (deps: SchedulerDeps) => PluginScheduler {
  if (!container.isRegistered(schedulerOptionsToken)) {
    container.register(schedulerOptionsToken, { useValue: options });
  }
  return (deps) => {
    const opts = container.resolve<SchedulerOptions>(schedulerOptionsToken);
    const extra = container.isRegistered(schedulerPluginsToken)
      ? container.resolveAll<readonly SchedulerPlugin[]>(schedulerPluginsToken).flat()
      : [];
    return createScheduler({
      ...opts,
      plugins: [...(opts.plugins ?? []), ...extra],
      claims: opts.claims ?? deps.claims,
    });
  };
}
