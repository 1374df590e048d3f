import type { Flavor } from '../model/flavor.js';
import type { Image } from '../model/image.js';
import type { Instance } from '../model/instance.js';
import type { PlacementRequest, Selection } from '../ports/scheduler.js';
import type { EngineContext } from './engine-context.js';

/** What {@link placeExisting} places an existing instance with. */
export interface ExistingPlacement {
  /** The flavor to claim (the new one for a resize). */
  readonly flavor: Flavor;
  readonly image: Image;
  readonly requestId: string;
  /** Hosts left out (the instance's own host, for a move elsewhere). */
  readonly excludedHostIds?: readonly string[];
}

/**
 * The placement request of an existing instance, as a create would make it: its zone, hints and
 * server group (members' hosts resolved, the instance itself left out).
 */
export async function placementRequestOf(
  ctx: EngineContext,
  instance: Instance,
  placement: ExistingPlacement,
): Promise<PlacementRequest> {
  const { deps } = ctx;
  const hostsOf = async (ids: readonly string[] | undefined): Promise<string[]> => {
    const out: string[] = [];
    for (const other of ids ?? []) {
      if (other === instance.id) continue;
      const inst = await deps.instances.get(other);
      if (inst?.hostId) out.push(inst.hostId);
    }
    return out;
  };
  let group: PlacementRequest['group'];
  if (instance.hints.group !== undefined) {
    const found = await deps.groups.get(instance.hints.group);
    if (found) group = { id: found.id, policy: found.policy, memberHostIds: await hostsOf(found.members) };
  }
  return {
    requestId: placement.requestId,
    projectId: instance.projectId,
    instanceIds: [instance.id],
    flavor: placement.flavor,
    image: placement.image,
    // the zone it runs in (the record does not tell a requested zone from the one it landed in)
    ...(instance.availabilityZone !== null ? { availabilityZone: instance.availabilityZone } : {}),
    hints: instance.hints,
    ...(instance.hints.sameHost ? { sameHostIds: await hostsOf(instance.hints.sameHost) } : {}),
    ...(instance.hints.differentHost
      ? { differentHostIds: await hostsOf(instance.hints.differentHost) }
      : {}),
    ...(group ? { group } : {}),
    ...(placement.excludedHostIds ? { excludedHostIds: placement.excludedHostIds } : {}),
  };
}

/**
 * Places an existing instance (evacuate, resize, migrations, unshelve) with the filters and claims
 * of a create, under its server group's lock so that hard group policies hold.
 * @throws NoValidHostError when no host fits
 */
export async function placeExisting(
  ctx: EngineContext,
  instance: Instance,
  placement: ExistingPlacement,
): Promise<Selection> {
  const select = async (): Promise<Selection> => {
    const [selection] = await ctx.deps.scheduler.select(await placementRequestOf(ctx, instance, placement));
    if (!selection) throw new Error('scheduler returned no selection');
    return selection;
  };
  const groupId = instance.hints.group;
  return groupId !== undefined ? ctx.groupLocks.run(groupId, select) : select();
}

/**
 * Claims `hostId` for an existing instance if it still fits and passes the filters (a destination
 * the caller named); resolves `undefined` otherwise.
 */
export async function claimExisting(
  ctx: EngineContext,
  instance: Instance,
  hostId: string,
  placement: ExistingPlacement,
): Promise<Selection | undefined> {
  const claim = async (): Promise<Selection | undefined> => {
    const made = await ctx.deps.scheduler.claim(hostId, await placementRequestOf(ctx, instance, placement));
    return made ? { instanceId: instance.id, hostId, claim: made, alternateHostIds: [] } : undefined;
  };
  const groupId = instance.hints.group;
  return groupId !== undefined ? ctx.groupLocks.run(groupId, claim) : claim();
}
