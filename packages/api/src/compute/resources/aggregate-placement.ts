import type { ApiServices } from '../../http/api-services.js';
import type { AggregateStore } from './aggregate-store.js';

/** Nova's `default_availability_zone`: the zone of a host in no aggregate with a zone. */
export const defaultZone = 'nova';

/**
 * Writes the aggregates of `hostIds` through to the engine's hosts (the scheduler's filters read
 * them there): each host gets its aggregates with their metadata and the zone of the one that has
 * one (or {@link defaultZone} once it is in none). Hosts the engine no longer knows are skipped.
 */
export async function applyAggregates(
  services: ApiServices,
  store: AggregateStore,
  hostIds: Iterable<string>,
): Promise<void> {
  const all = await store.list();
  for (const hostId of new Set(hostIds)) {
    if (!(await services.engine.hosts.get(hostId))) continue;
    const mine = all.filter((a) => a.hosts.includes(hostId));
    const zone = mine.find((a) => a.availabilityZone !== null)?.availabilityZone ?? defaultZone;
    await services.engine.hosts.setPlacement(hostId, {
      aggregates: mine.map((a) => ({ id: String(a.id), name: a.name, metadata: { ...a.metadata } })),
      availabilityZone: zone,
    });
  }
}

/**
 * Applies every stored aggregate to its hosts again (after a start: the engine rebuilds hosts from
 * their bindings). Hosts in no aggregate keep the zone their binding gave them.
 */
export async function syncAggregates(services: ApiServices, store: AggregateStore): Promise<void> {
  const hosts = (await store.list()).flatMap((a) => a.hosts);
  await applyAggregates(services, store, hosts);
}
