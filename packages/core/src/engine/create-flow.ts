import { BuildAbortedError, NotFoundError, NoValidHostError } from '../errors.js';
import type { InstanceAction } from '../model/action.js';
import type { Claim } from '../model/claim.js';
import type { Flavor } from '../model/flavor.js';
import { newId } from '../model/ids.js';
import type { Image } from '../model/image.js';
import type { Instance } from '../model/instance.js';
import { type CreateInstanceInput, createInstanceRequestSchema } from '../model/requests.js';
import type { ServerGroup } from '../model/server-group.js';
import { parseInput } from '../model/validation.js';
import type { NetworkRequest } from '../ports/network.js';
import type { QuotaReservation } from '../ports/quota.js';
import type { PlacementRequest, Selection } from '../ports/scheduler.js';
import type { VolumeRequest } from '../ports/volume.js';
import { type BuildTicket, type EngineContext, faultOf, quotaDeltasOf } from './engine-context.js';
import { KeyedMutex } from './keyed-mutex.js';

/** A create request admitted: records inserted, quota held, build not started. */
export interface AdmittedRequest {
  readonly instances: Instance[];
  readonly actions: InstanceAction[];
  readonly flavor: Flavor;
  readonly image: Image;
  readonly group: ServerGroup | undefined;
  readonly placement: Omit<PlacementRequest, 'group' | 'sameHostIds' | 'differentHostIds'>;
  /** Ports and volumes asked for, handed to the adapters on the chosen host. */
  readonly networks: readonly NetworkRequest[];
  readonly volumes: readonly VolumeRequest[];
}

/**
 * Create: validate, reserve quota, insert records (admission), then place all instances at once
 * and build each on its host, rescheduling onto alternates after a spawn failure.
 */
export class CreateFlow {
  /** Placement of requests joining one server group is serialised, so group policies hold. */
  private readonly groupLocks = new KeyedMutex();

  constructor(private readonly ctx: EngineContext) {}

  /**
   * Validates the request and admits it: quota reserved and committed, records inserted in
   * `building`/`scheduling`. Throws (and holds nothing) on bad input or exceeded quota.
   */
  async admit(input: CreateInstanceInput): Promise<AdmittedRequest> {
    const { deps } = this.ctx;
    const req = parseInput(createInstanceRequestSchema, input);
    const flavor = await deps.flavors.get(req.flavorId);
    if (!flavor) throw new NotFoundError('flavor', req.flavorId, 'flavorId');
    const image = await deps.images.get(req.imageId);
    if (!image) throw new NotFoundError('image', req.imageId, 'imageId');
    let group: ServerGroup | undefined;
    if (req.hints.group !== undefined) {
      group = await deps.groups.get(req.hints.group);
      if (!group) throw new NotFoundError('serverGroup', req.hints.group, 'hints.group');
    }
    for (const [field, ids] of [
      ['hints.sameHost', req.hints.sameHost],
      ['hints.differentHost', req.hints.differentHost],
    ] as const) {
      for (const id of ids ?? []) {
        if (!(await deps.instances.get(id))) throw new NotFoundError('instance', id, field);
      }
    }

    const count = req.count;
    const reservation = await deps.quota.reserve(req.projectId, quotaDeltasOf({ flavor }, count));
    const now = this.ctx.now();
    const requestId = req.requestId ?? newId();
    const instances: Instance[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const instance: Instance = {
          id: newId(),
          name: count === 1 ? req.name : `${req.name}-${i + 1}`,
          projectId: req.projectId,
          userId: req.userId,
          flavor,
          imageId: image.id,
          hostId: null,
          availabilityZone: req.availabilityZone ?? null,
          vmState: 'building',
          taskState: 'scheduling',
          powerState: 'nostate',
          fault: null,
          metadata: req.metadata,
          hints: req.hints,
          createdAt: now,
          updatedAt: now,
          launchedAt: null,
          revision: 0,
        };
        await deps.instances.insert(instance);
        instances.push(instance);
      }
    } catch (e) {
      await deps.quota.rollback(reservation);
      for (const inst of instances) await deps.instances.remove(inst.id);
      throw e;
    }
    for (const inst of instances) {
      this.ctx.emit(() => ({ type: 'instance.created', instanceId: inst.id, at: now, instance: inst }));
    }
    // the reservation becomes usage while the create actions are recorded
    const context = { userId: req.userId, projectId: req.projectId, requestId };
    const [committed, ...started] = await Promise.allSettled([
      deps.quota.commit(reservation),
      ...instances.map((inst) => this.ctx.startAction(inst.id, 'create', context)),
    ]);
    const failed = [committed, ...started].find((r) => r.status === 'rejected');
    if (failed) {
      await this.undoAdmission(reservation, committed.status === 'fulfilled', instances, {
        actions: started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
        cause: failed.reason,
      });
      throw failed.reason;
    }
    const actions = started.map((r) => (r as PromiseFulfilledResult<InstanceAction>).value);
    for (const inst of instances) this.ctx.builds.set(inst.id, { cancelled: false });
    if (group)
      await deps.groups.addMembers(
        group.id,
        instances.map((i) => i.id),
      );
    return {
      instances,
      actions,
      flavor,
      image,
      group,
      networks: req.networks,
      volumes: req.volumes,
      placement: {
        requestId,
        projectId: req.projectId,
        instanceIds: instances.map((i) => i.id),
        flavor,
        image,
        ...(req.availabilityZone !== undefined ? { availabilityZone: req.availabilityZone } : {}),
        hints: req.hints,
      },
    };
  }

  /**
   * Takes back an admission whose last step failed: the quota (released if it was already
   * committed, else the reservation rolled back), the create actions recorded (closed with the
   * cause as fault) and the instance records (removed, with `instance.deleted` events).
   */
  private async undoAdmission(
    reservation: QuotaReservation,
    quotaCommitted: boolean,
    instances: readonly Instance[],
    undo: { actions: readonly InstanceAction[]; cause: unknown },
  ): Promise<void> {
    const { deps } = this.ctx;
    if (quotaCommitted) await deps.quota.release(reservation.projectId, reservation.deltas);
    else await deps.quota.rollback(reservation);
    const fault = faultOf(undo.cause, this.ctx.now());
    for (const action of undo.actions) await this.ctx.finishAction(action, fault);
    for (const inst of instances) {
      await deps.instances.remove(inst.id);
      this.ctx.emit(() => ({ type: 'instance.deleted', instanceId: inst.id, at: this.ctx.now() }));
    }
  }

  /** Places and builds an admitted request. Never rejects: failures end as ERROR with a fault. */
  async build(admitted: AdmittedRequest): Promise<Instance[]> {
    try {
      const placed = admitted.group
        ? await this.groupLocks.run(admitted.group.id, () => this.place(admitted))
        : await this.place(admitted);
      if (!placed) return await this.latest(admitted.instances);
      return await Promise.all(
        admitted.instances.map((inst, i) =>
          this.buildOne(
            placed.instances[i] ?? inst,
            admitted,
            placed.selections[i]!,
            placed.request,
            admitted.actions[i]!,
          ),
        ),
      );
    } finally {
      for (const inst of admitted.instances) this.ctx.builds.delete(inst.id);
    }
  }

  /**
   * Runs the scheduler; on NoValidHost every instance goes to ERROR. Records the chosen hosts at
   * once when later placements read them (server group members, same/different-host hints);
   * otherwise each host is recorded with the build's next step.
   */
  private async place(
    admitted: AdmittedRequest,
  ): Promise<{ selections: Selection[]; instances: Instance[]; request: PlacementRequest } | undefined> {
    const { deps } = this.ctx;
    const request = await this.resolvePlacement(admitted);
    let selections: Selection[];
    try {
      selections = await deps.scheduler.select(request);
    } catch (e) {
      const fault = faultOf(e, this.ctx.now());
      await Promise.all(admitted.instances.map((inst, i) => this.fail(inst, admitted.actions[i]!, fault)));
      if (!(e instanceof NoValidHostError)) this.ctx.emitFault(admitted.instances[0]!.id, null, fault);
      return undefined;
    }
    const byId = new Map(selections.map((s) => [s.instanceId, s]));
    const ordered = admitted.instances.map((inst) => byId.get(inst.id)!);
    if (!placesOthers(request)) {
      // nothing placed later depends on these hosts: spawnOn records each with its task
      return { selections: ordered, instances: admitted.instances, request };
    }
    const instances: Instance[] = [];
    for (let i = 0; i < admitted.instances.length; i++) {
      const inst = admitted.instances[i]!;
      const sel = ordered[i]!;
      const updated = await this.ctx.applyAsTaskOwner(inst, 'scheduling', { hostId: sel.hostId });
      instances.push(updated ?? inst);
    }
    return { selections: ordered, instances, request };
  }

  private async resolvePlacement(admitted: AdmittedRequest): Promise<PlacementRequest> {
    const { deps } = this.ctx;
    const hostsOf = async (ids: readonly string[] | undefined): Promise<string[]> => {
      const out: string[] = [];
      for (const id of ids ?? []) {
        const inst = await deps.instances.get(id);
        if (inst?.hostId) out.push(inst.hostId);
      }
      return out;
    };
    const base = admitted.placement;
    let group: PlacementRequest['group'];
    if (admitted.group) {
      const fresh = (await deps.groups.get(admitted.group.id)) ?? admitted.group;
      const own = new Set(base.instanceIds);
      const others = fresh.members.filter((m) => !own.has(m));
      group = { id: fresh.id, policy: fresh.policy, memberHostIds: await hostsOf(others) };
    }
    return {
      ...base,
      ...(base.hints.sameHost ? { sameHostIds: await hostsOf(base.hints.sameHost) } : {}),
      ...(base.hints.differentHost ? { differentHostIds: await hostsOf(base.hints.differentHost) } : {}),
      ...(group ? { group } : {}),
    };
  }

  /** Builds one instance on its selected host, then on alternates (bounded by `maxBuildAttempts`). */
  private async buildOne(
    start: Instance,
    admitted: AdmittedRequest,
    selection: Selection,
    request: PlacementRequest,
    action: InstanceAction,
  ): Promise<Instance> {
    const { deps } = this.ctx;
    const ticket = this.ctx.builds.get(start.id) ?? { cancelled: false };
    const alternates = [...selection.alternateHostIds];
    let claim: Claim | undefined = selection.claim;
    let hostId = selection.hostId;
    let instance = start;
    let attempt = 1;
    const tried: string[] = [];
    for (;;) {
      tried.push(hostId);
      this.ctx.emit(() => ({
        type: 'instance.scheduled',
        instanceId: start.id,
        at: this.ctx.now(),
        hostId,
        attempt,
        alternateHostIds: alternates,
      }));
      try {
        const zone = hostId === selection.hostId ? selection.availabilityZone : undefined;
        const spawned = await this.spawnOn(instance, hostId, zone, admitted, ticket);
        // the instance goes active and its action ends side by side (on a batching store: in one
        // transaction); should a delete have taken the instance over meanwhile, the abort below
        // records the action's real end
        const [active, ended] = await Promise.all([
          this.ctx.applyAsTaskOwner(spawned, 'spawning', {
            vmState: 'active',
            taskState: null,
            powerState: 'running',
            launchedAt: this.ctx.now(),
            fault: null,
          }),
          this.ctx.recordActionEnd(action, null),
        ]);
        if (!active) throw new BuildAbortedError(start.id);
        if (claim) deps.scheduler.buildFinished?.(claim);
        this.ctx.emitAction(ended);
        return active;
      } catch (e) {
        const aborted = ticket.cancelled || e instanceof BuildAbortedError;
        if (claim) deps.scheduler.buildFinished?.(claim);
        await this.cleanupHost(instance, hostId, claim);
        claim = undefined;
        if (aborted) {
          await this.endAborted(action);
          return (await deps.instances.get(start.id)) ?? instance;
        }
        const fault = faultOf(e, this.ctx.now(), { hostId, attempt });
        this.ctx.emitFault(start.id, hostId, fault);
        deps.scheduler.recordBuildFailure?.(hostId);
        const next = await this.claimAlternate(alternates, request, start.id, attempt);
        const fresh = await deps.instances.get(start.id);
        if (!fresh || ticket.cancelled) {
          if (next) await deps.scheduler.release(next.claim);
          await this.endAborted(action);
          return fresh ?? instance;
        }
        if (!next) {
          const final = {
            ...fault,
            message: `build failed after ${attempt} attempt(s) on ${tried.join(', ')}: ${fault.message}`,
            details: { ...fault.details, attempts: attempt, hostsTried: tried },
          };
          return (await this.fail(fresh, action, final)) ?? fresh;
        }
        this.ctx.emit(() => ({
          type: 'instance.rescheduled',
          instanceId: start.id,
          at: this.ctx.now(),
          fromHostId: hostId,
          toHostId: next.hostId,
          cause: fault,
        }));
        attempt++;
        claim = next.claim;
        hostId = next.hostId;
        const moved = await this.ctx.applyAsTaskOwner(fresh, fresh.taskState, {
          hostId,
          taskState: 'scheduling',
          powerState: 'nostate',
        });
        if (!moved) {
          await deps.scheduler.release(claim);
          return fresh;
        }
        instance = moved;
      }
    }
  }

  /** A delete stopped the build: the create action ends with it (not left pending). */
  private async endAborted(action: InstanceAction): Promise<void> {
    await this.ctx.finishAction(action, faultOf(new BuildAbortedError(action.instanceId), this.ctx.now()));
  }

  /**
   * Records the host and task `spawning`, prepares network and volumes and asks the host's driver
   * to spawn. `zone`: the host's availability zone if the scheduler told it (else read from the
   * host store).
   */
  private async spawnOn(
    instance: Instance,
    hostId: string,
    zone: string | undefined,
    admitted: AdmittedRequest,
    ticket: BuildTicket,
  ): Promise<Instance> {
    const { deps } = this.ctx;
    if (ticket.cancelled) throw new BuildAbortedError(instance.id);
    const availabilityZone = zone ?? (await deps.hosts.get(hostId))?.availabilityZone;
    const spawning = await this.ctx.applyAsTaskOwner(instance, 'scheduling', {
      hostId,
      taskState: 'spawning',
      availabilityZone: availabilityZone ?? instance.availabilityZone,
    });
    if (!spawning) throw new BuildAbortedError(instance.id);
    const driver = deps.registry.driverFor(hostId);
    const ports = await deps.network.allocate(spawning, admitted.networks);
    const volumes = await deps.volumes.connect(spawning, hostId, admitted.volumes);
    await driver.spawn({
      instance: spawning,
      flavor: admitted.flavor,
      image: admitted.image,
      images: deps.images,
      ports,
      volumes,
    });
    if (ticket.cancelled) throw new BuildAbortedError(instance.id);
    return spawning;
  }

  /** Removes whatever a failed or aborted build left on a host and releases its claim. */
  private async cleanupHost(instance: Instance, hostId: string, claim: Claim | undefined): Promise<void> {
    const { deps } = this.ctx;
    const onHost = { ...instance, hostId };
    try {
      if (deps.registry.has(hostId)) await deps.registry.driverFor(hostId).destroy(onHost);
    } catch (e) {
      this.ctx.emitFault(instance.id, hostId, faultOf(e, this.ctx.now(), { cleanup: true }));
    }
    await deps.network.deallocate(onHost).catch(() => undefined);
    await deps.volumes.disconnect(onHost, hostId).catch(() => undefined);
    if (claim) await deps.scheduler.release(claim);
  }

  private async claimAlternate(
    alternates: string[],
    request: PlacementRequest,
    instanceId: string,
    attempt: number,
  ): Promise<{ hostId: string; claim: Claim } | undefined> {
    const single: PlacementRequest = { ...request, instanceIds: [instanceId] };
    while (attempt < this.ctx.deps.options.maxBuildAttempts && alternates.length > 0) {
      const hostId = alternates.shift()!;
      const claim = await this.ctx.deps.scheduler.claim(hostId, single);
      if (claim) return { hostId, claim };
    }
    return undefined;
  }

  /** Puts a build into ERROR with a fault and closes its action. */
  private async fail(
    instance: Instance,
    action: InstanceAction,
    fault: Instance['fault'] & object,
  ): Promise<Instance | undefined> {
    const failed = await this.ctx.applyAsTaskOwner(instance, instance.taskState, {
      vmState: 'error',
      taskState: null,
      powerState: 'nostate',
      hostId: null,
      fault,
    });
    await this.ctx.finishAction(action, fault);
    return failed;
  }

  private async latest(instances: readonly Instance[]): Promise<Instance[]> {
    return Promise.all(instances.map(async (i) => (await this.ctx.deps.instances.get(i.id)) ?? i));
  }
}

/**
 * Whether where this request's instances land steers placements after it: a server group's
 * policy, or same/different-host hints that name instances (other requests may name these).
 */
function placesOthers(request: PlacementRequest): boolean {
  return (
    request.group !== undefined ||
    request.hints.sameHost !== undefined ||
    request.hints.differentHost !== undefined
  );
}
