import {
  BuildAbortedError,
  DeadlineExceededError,
  DuplicateError,
  EngineClosedError,
  NotFoundError,
  NoValidHostError,
} from '../errors.js';
import type { InstanceAction } from '../model/action.js';
import type { Claim } from '../model/claim.js';
import type { Flavor } from '../model/flavor.js';
import { newId } from '../model/ids.js';
import type { Image } from '../model/image.js';
import type { Fault, Instance } from '../model/instance.js';
import { type CreateInstanceInput, createInstanceRequestSchema } from '../model/requests.js';
import type { ServerGroup } from '../model/server-group.js';
import { parseInput } from '../model/validation.js';
import { callAbortState } from '../ports/driver.js';
import type { NetworkRequest, PortBinding } from '../ports/network.js';
import type { PlacementRequest, Selection } from '../ports/scheduler.js';
import type { StoreWrite } from '../ports/unit-of-work.js';
import type { BlockDevice, VolumeRequest } from '../ports/volume.js';
import { TaskControl } from './deadline.js';
import { type EngineContext, faultOf, quotaDeltasOf, reschedulable } from './engine-context.js';
import { attachedPortOf } from './interface-attach-flow.js';
import type { KeyedMutex } from './keyed-mutex.js';
import { instanceIdForRequest } from './request-ids.js';
import { attachedVolumeOf } from './volume-attach-flow.js';

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
  /** A retry of a request admitted before (same request id): nothing new was created. */
  readonly replayed: boolean;
}

/**
 * Create: validate, consume quota, insert records, actions and group membership in one unit of
 * work (admission), then place all instances at once and build each on its host, rescheduling
 * onto alternates after a spawn failure or a spawn past its deadline.
 */
export class CreateFlow {
  /** Placement of requests joining one server group is serialised (with evacuations), so group policies hold. */
  private readonly groupLocks: KeyedMutex;

  constructor(private readonly ctx: EngineContext) {
    this.groupLocks = ctx.groupLocks;
  }

  /**
   * Validates the request and admits it: quota consumed, records, create actions and group
   * membership written in one unit (on a unit that does not apply quota: quota reserved before
   * it and the reservation committed after it). Throws (and holds nothing) on
   * bad input or exceeded quota. A request naming a `requestId` that was admitted before resolves
   * with that request's instances (`replayed`).
   */
  async admit(input: CreateInstanceInput): Promise<AdmittedRequest> {
    const { deps } = this.ctx;
    if (this.ctx.closed) throw new EngineClosedError('create');
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
    const idOf = (i: number) =>
      req.requestId === undefined ? newId() : instanceIdForRequest(req.projectId, req.requestId, i);
    const requestId = req.requestId ?? newId();
    const base = { flavor, image, group, networks: req.networks, volumes: req.volumes };
    const placement = {
      requestId,
      projectId: req.projectId,
      flavor,
      image,
      ...(req.availabilityZone !== undefined ? { availabilityZone: req.availabilityZone } : {}),
      hints: req.hints,
    };
    const replayed = (earlier: Instance[]): AdmittedRequest => ({
      ...base,
      instances: earlier,
      actions: [],
      replayed: true,
      placement: { ...placement, instanceIds: earlier.map((i) => i.id) },
    });
    if (req.requestId !== undefined) {
      const earlier = await this.replay(count, idOf);
      if (earlier) {
        return replayed(earlier);
      }
    }

    const deltas = quotaDeltasOf({ flavor }, count);
    // quota consumed in the unit itself when the unit applies it; else reserved before, committed after
    const reservation = this.ctx.quotaInUnit ? undefined : await deps.quota.reserve(req.projectId, deltas);
    const now = this.ctx.now();
    const context = { userId: req.userId, projectId: req.projectId, requestId };
    const instances: Instance[] = [];
    const actions: InstanceAction[] = [];
    const writes: StoreWrite[] = reservation
      ? []
      : [{ kind: 'quota.consume', projectId: req.projectId, deltas }];
    for (let i = 0; i < count; i++) {
      const instance: Instance = {
        id: idOf(i),
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
      instances.push(instance);
      writes.push(
        { kind: 'instance.insert', instance },
        { kind: 'event', event: { type: 'instance.created', instanceId: instance.id, at: now, instance } },
      );
      const started = this.ctx.actionStart(instance.id, 'create', context);
      actions.push(started.action);
      writes.push(...started.writes);
    }
    if (group)
      writes.push({ kind: 'group.addMembers', groupId: group.id, instanceIds: instances.map((i) => i.id) });
    // the builds are known before their records exist, so no reconciliation pass takes them for leftovers
    for (const inst of instances) this.ctx.builds.set(inst.id, new TaskControl());
    const forget = () => {
      for (const inst of instances) this.ctx.builds.delete(inst.id);
    };
    try {
      await this.ctx.commit(writes);
    } catch (e) {
      forget();
      if (reservation) await deps.quota.rollback(reservation);
      // a concurrent retry of the same request id won the insert: answer with its instances
      if (e instanceof DuplicateError && req.requestId !== undefined) {
        const earlier = await this.replay(count, idOf);
        if (earlier) {
          return replayed(earlier);
        }
      }
      throw e;
    }
    if (reservation) {
      try {
        await deps.quota.commit(reservation);
      } catch (e) {
        forget();
        await this.undoAdmission(instances, actions, group, e);
        await deps.quota.rollback(reservation).catch(() => undefined);
        throw e;
      }
    }
    return {
      ...base,
      instances,
      actions,
      replayed: false,
      placement: { ...placement, instanceIds: instances.map((i) => i.id) },
    };
  }

  /** The instances an earlier attempt of this request created, if it created any. */
  private async replay(count: number, idOf: (i: number) => string): Promise<Instance[] | undefined> {
    const first = await this.ctx.deps.instances.get(idOf(0));
    if (!first) return undefined;
    const out = [first];
    for (let i = 1; i < count; i++) {
      const inst = await this.ctx.deps.instances.get(idOf(i));
      if (inst) out.push(inst);
    }
    return out;
  }

  /** Takes back an admission whose quota could not be committed: one unit removes all of it. */
  private async undoAdmission(
    instances: readonly Instance[],
    actions: readonly InstanceAction[],
    group: ServerGroup | undefined,
    cause: unknown,
  ): Promise<void> {
    const at = this.ctx.now();
    const fault = faultOf(cause, at);
    const writes: StoreWrite[] = [];
    for (const action of actions) writes.push(...this.ctx.actionEnd(action, fault).writes);
    for (const inst of instances) {
      writes.push({ kind: 'instance.remove', id: inst.id });
      if (group) writes.push({ kind: 'group.removeMember', groupId: group.id, instanceId: inst.id });
      writes.push({ kind: 'event', event: { type: 'instance.deleted', instanceId: inst.id, at } });
    }
    await this.ctx.commit(writes);
  }

  /**
   * Places and builds an admitted request. Never rejects: failures end as ERROR with a fault. An
   * instance deleted meanwhile resolves as `deleted`.
   */
  async build(admitted: AdmittedRequest): Promise<Instance[]> {
    if (admitted.replayed) return this.latest(admitted.instances);
    try {
      const placed = admitted.group
        ? await this.groupLocks.run(admitted.group.id, () => this.place(admitted))
        : await this.place(admitted);
      if (!placed) return await this.latest(admitted.instances);
      return await Promise.all(
        admitted.instances.map((inst, i) =>
          this.buildOne(placed.instances[i] ?? inst, admitted, placed.selections[i]!, admitted.actions[i]!),
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
    const request = await this.resolvePlacement(admitted, admitted.placement.instanceIds);
    let selections: Selection[];
    try {
      selections = await deps.scheduler.select(request);
    } catch (e) {
      const fault = faultOf(e, this.ctx.now());
      const extra =
        e instanceof NoValidHostError ? [] : [this.ctx.faultEvent(admitted.instances[0]!.id, null, fault)];
      await Promise.all(
        admitted.instances.map((inst, i) =>
          this.fail(inst, admitted.actions[i]!, fault, i === 0 ? extra : []),
        ),
      );
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

  /**
   * The placement request with group members' and hinted instances' hosts read now. `own`: the
   * instances being placed, left out of the group's members (an alternate's claim passes only
   * itself, so its siblings count as members).
   */
  private async resolvePlacement(
    admitted: AdmittedRequest,
    own: readonly string[],
  ): Promise<PlacementRequest> {
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
      const mine = new Set(own);
      const others = fresh.members.filter((m) => !mine.has(m));
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
    action: InstanceAction,
  ): Promise<Instance> {
    const { deps } = this.ctx;
    const task = this.ctx.builds.get(start.id) ?? new TaskControl();
    const alternates = [...selection.alternateHostIds];
    let claim: Claim | undefined = selection.claim;
    let hostId = selection.hostId;
    let instance = start;
    let attempt = 1;
    const tried: string[] = [];
    let scheduled: StoreWrite = this.scheduledEvent(start.id, hostId, attempt, alternates);
    for (;;) {
      tried.push(hostId);
      try {
        const zone = hostId === selection.hostId ? selection.availabilityZone : undefined;
        const spawned = await this.spawnOn(instance, hostId, zone, admitted, task, scheduled);
        // the instance goes active and its action ends in one unit of work
        const ended = this.ctx.actionEnd(action, null);
        const active = await this.ctx.applyAsTaskOwner(
          spawned.instance,
          'spawning',
          {
            vmState: 'active',
            taskState: null,
            powerState: 'running',
            launchedAt: this.ctx.now(),
            fault: null,
            ...(spawned.volumes.length ? { volumes: spawned.volumes.map(attachedVolumeOf) } : {}),
            ...(spawned.ports.length ? { ports: spawned.ports.map(attachedPortOf) } : {}),
          },
          ended.writes,
        );
        if (!active) throw new BuildAbortedError(start.id);
        if (claim) deps.scheduler.buildFinished?.(claim);
        return active;
      } catch (e) {
        const aborted = task.aborted && !(task.reason instanceof DeadlineExceededError);
        if (claim) deps.scheduler.buildFinished?.(claim);
        const stopping = aborted || e instanceof BuildAbortedError;
        // a guest that could not be removed keeps its host and claim: the instance ends in ERROR
        // there, and its delete removes the guest (no orphan, no claim released under a guest)
        const cleaned = await this.cleanupHost(instance, hostId, stopping ? claim : undefined);
        const held = cleaned || stopping ? undefined : claim;
        if (cleaned && !stopping && claim) await deps.scheduler.release(claim);
        claim = undefined;
        if (stopping) return this.endAborted(action, start);
        const fault = faultOf(e, this.ctx.now(), { hostId, attempt });
        if (held) {
          const fresh = await deps.instances.get(start.id);
          if (!fresh) return this.endAborted(action, start);
          const stuck: Fault = {
            ...fault,
            message: `build failed on ${hostId} and its guest could not be removed: ${fault.message}`,
            details: { ...fault.details, attempts: attempt, hostsTried: [...tried], guestLeft: true },
          };
          return (
            (await this.fail(fresh, action, stuck, [this.ctx.faultEvent(start.id, hostId, stuck)], hostId)) ??
            fresh
          );
        }
        deps.scheduler.recordBuildFailure?.(hostId);
        const next = reschedulable(e)
          ? await this.claimAlternate(alternates, admitted, start.id, attempt)
          : undefined;
        const fresh = await deps.instances.get(start.id);
        if (!fresh || task.aborted) {
          if (next) await deps.scheduler.release(next.claim);
          return this.endAborted(action, fresh ?? start);
        }
        const faultWrite = this.ctx.faultEvent(start.id, hostId, fault);
        if (!next) {
          const final: Fault = {
            ...fault,
            message: `build failed after ${attempt} attempt(s) on ${tried.join(', ')}: ${fault.message}`,
            details: { ...fault.details, attempts: attempt, hostsTried: tried },
          };
          return (await this.fail(fresh, action, final, [faultWrite])) ?? fresh;
        }
        const rescheduled: StoreWrite = {
          kind: 'event',
          event: {
            type: 'instance.rescheduled',
            instanceId: start.id,
            at: this.ctx.now(),
            fromHostId: hostId,
            toHostId: next.hostId,
            cause: fault,
          },
        };
        attempt++;
        claim = next.claim;
        hostId = next.hostId;
        const moved = await this.ctx.applyAsTaskOwner(
          fresh,
          fresh.taskState,
          { hostId, taskState: 'scheduling', powerState: 'nostate' },
          [],
          [faultWrite, rescheduled],
        );
        if (!moved) {
          await deps.scheduler.release(claim);
          return this.endAborted(action, fresh);
        }
        instance = moved;
        scheduled = this.scheduledEvent(start.id, hostId, attempt, alternates);
      }
    }
  }

  private scheduledEvent(
    instanceId: string,
    hostId: string,
    attempt: number,
    alternates: readonly string[],
  ): StoreWrite {
    return {
      kind: 'event',
      event: {
        type: 'instance.scheduled',
        instanceId,
        at: this.ctx.now(),
        hostId,
        attempt,
        alternateHostIds: [...alternates],
      },
    };
  }

  /**
   * A delete stopped the build: the create action ends with it (not left pending); resolves with
   * the instance as `deleted` once the delete removed it.
   */
  private async endAborted(action: InstanceAction, last: Instance): Promise<Instance> {
    await this.ctx
      .finishAction(action, faultOf(new BuildAbortedError(action.instanceId), this.ctx.now()))
      .catch(() => undefined);
    await this.ctx.deletes.get(last.id)?.catch(() => undefined);
    const now = await this.ctx.deps.instances.get(last.id);
    return (
      now ?? { ...last, vmState: 'deleted', taskState: null, powerState: 'nostate', hostId: last.hostId }
    );
  }

  /**
   * Records the host and task `spawning` (with the placement event), prepares network and volumes
   * and asks the host's driver to spawn, with the spawn deadline and the build's signal. Resolves
   * the instance as recorded and the volumes and ports connected to it (recorded when it goes active).
   */
  private async spawnOn(
    instance: Instance,
    hostId: string,
    zone: string | undefined,
    admitted: AdmittedRequest,
    task: TaskControl,
    scheduled: StoreWrite,
  ): Promise<{ instance: Instance; volumes: readonly BlockDevice[]; ports: readonly PortBinding[] }> {
    const { deps } = this.ctx;
    if (task.aborted) throw new BuildAbortedError(instance.id);
    const availabilityZone = zone ?? (await deps.hosts.get(hostId))?.availabilityZone;
    const spawning = await this.ctx.applyAsTaskOwner(
      instance,
      'scheduling',
      { hostId, taskState: 'spawning', availabilityZone: availabilityZone ?? instance.availabilityZone },
      [],
      [scheduled],
    );
    if (!spawning) throw new BuildAbortedError(instance.id);
    const ports = await deps.network.allocate(spawning, admitted.networks);
    const volumes = withGuestDevices(await deps.volumes.connect(spawning, hostId, admitted.volumes));
    await this.ctx.callDriver(
      'spawn',
      { operation: 'spawn', instanceId: instance.id, hostId },
      task,
      (driver, call) =>
        driver.spawn({
          instance: spawning,
          flavor: admitted.flavor,
          image: admitted.image,
          images: deps.images,
          ports,
          volumes,
          get signal() {
            return call.signal;
          },
          [callAbortState]: () => call[callAbortState]?.(),
        }),
    );
    if (task.aborted) throw new BuildAbortedError(instance.id);
    return { instance: spawning, volumes, ports };
  }

  /** Removes whatever a failed or aborted build left on a host and releases its claim. */
  /**
   * Removes whatever a failed or aborted build left on a host, and releases `claim`. Resolves
   * whether the guest is gone (false: the destroy failed; the claim is then kept).
   */
  private async cleanupHost(instance: Instance, hostId: string, claim: Claim | undefined): Promise<boolean> {
    const { deps } = this.ctx;
    const onHost = { ...instance, hostId };
    try {
      if (deps.registry.has(hostId)) {
        await this.ctx.callDriver(
          'destroy',
          { operation: 'destroy', instanceId: instance.id, hostId },
          undefined,
          (d, call) => d.destroy(onHost, call),
        );
      }
    } catch (e) {
      await this.ctx.recordQuietly({
        type: 'instance.fault',
        instanceId: instance.id,
        at: this.ctx.now(),
        hostId,
        fault: faultOf(e, this.ctx.now(), { cleanup: true }),
      });
      return false;
    }
    await deps.network.deallocate(onHost).catch(() => undefined);
    await deps.volumes.disconnect(onHost, hostId).catch(() => undefined);
    if (claim) await deps.scheduler.release(claim);
    return true;
  }

  /**
   * Claims the next alternate that still fits. The group's membership is read again under the
   * group's lock, siblings included, so a hard policy holds on reschedule too.
   */
  private async claimAlternate(
    alternates: string[],
    admitted: AdmittedRequest,
    instanceId: string,
    attempt: number,
  ): Promise<{ hostId: string; claim: Claim } | undefined> {
    const tryClaim = async () => {
      const single = { ...(await this.resolvePlacement(admitted, [instanceId])), instanceIds: [instanceId] };
      while (attempt < this.ctx.deps.options.maxBuildAttempts && alternates.length > 0) {
        const hostId = alternates.shift()!;
        const claim = await this.ctx.deps.scheduler.claim(hostId, single);
        if (claim) return { hostId, claim };
      }
      return undefined;
    };
    return admitted.group ? this.groupLocks.run(admitted.group.id, tryClaim) : tryClaim();
  }

  /**
   * Puts a build into ERROR with a fault and closes its action, in one unit. `hostId`: the host
   * whose guest could not be removed (kept on the instance); none by default.
   */
  private async fail(
    instance: Instance,
    action: InstanceAction,
    fault: Fault,
    extra: readonly StoreWrite[] = [],
    hostId: string | null = null,
  ): Promise<Instance | undefined> {
    const ended = this.ctx.actionEnd(action, fault);
    const failed = await this.ctx.applyAsTaskOwner(
      instance,
      instance.taskState,
      { vmState: 'error', taskState: null, powerState: 'nostate', hostId, fault },
      [...extra, ...ended.writes],
    );
    if (!failed) await this.ctx.finishAction(action, fault).catch(() => undefined);
    return failed;
  }

  private async latest(instances: readonly Instance[]): Promise<Instance[]> {
    return Promise.all(
      instances.map(
        async (i) =>
          (await this.ctx.deps.instances.get(i.id)) ?? {
            ...i,
            vmState: 'deleted',
            taskState: null,
            powerState: 'nostate',
          },
      ),
    );
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

/**
 * The block devices of a spawn with a guest device each: the one asked for, else the next free
 * `vdb`..`vdz` in request order (`vda` is the root disk), as the drivers would pick, so that the
 * instance records every volume's device. Beyond `vdz` the device stays the driver's choice.
 */
function withGuestDevices(devices: readonly BlockDevice[]): BlockDevice[] {
  const taken = new Set(['vda', ...devices.flatMap((d) => (d.device ? [d.device] : []))]);
  return devices.map((d) => {
    if (d.device) return d;
    for (let c = 'b'.charCodeAt(0); c <= 'z'.charCodeAt(0); c++) {
      const name = `vd${String.fromCharCode(c)}`;
      if (taken.has(name)) continue;
      taken.add(name);
      return { ...d, device: name };
    }
    return d;
  });
}
