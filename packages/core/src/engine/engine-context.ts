import { Subject } from 'rxjs';
import { NotFoundError, NovaError, RevisionConflictError } from '../errors.js';
import type { InstanceAction, InstanceActionName, RequestContext } from '../model/action.js';
import { newId } from '../model/ids.js';
import type { Fault, Instance, InstancePatch } from '../model/instance.js';
import type { QuotaDeltas } from '../model/quota.js';
import type { TaskState } from '../model/states.js';
import type { Clock } from '../ports/clock.js';
import type { ImageService } from '../ports/image-service.js';
import type { NetworkAdapter } from '../ports/network.js';
import type { QuotaEngine } from '../ports/quota.js';
import type { Scheduler } from '../ports/scheduler.js';
import type {
  ActionStore,
  ClaimStore,
  FlavorStore,
  HostStore,
  InstanceStore,
  ServerGroupStore,
} from '../ports/stores.js';
import type { VolumeAdapter } from '../ports/volume.js';
import type { EngineOptions } from './engine-options.js';
import type { InstanceEvent } from './events.js';
import type { HostRegistry } from './host-registry.js';

/** Every collaborator of the engine, resolved once from DI. */
export interface EngineDeps {
  readonly instances: InstanceStore;
  readonly hosts: HostStore;
  readonly claims: ClaimStore;
  readonly actions: ActionStore;
  readonly flavors: FlavorStore;
  readonly groups: ServerGroupStore;
  readonly scheduler: Scheduler;
  readonly quota: QuotaEngine;
  readonly images: ImageService;
  readonly network: NetworkAdapter;
  readonly volumes: VolumeAdapter;
  readonly clock: Clock;
  readonly registry: HostRegistry;
  readonly options: EngineOptions;
}

/** The engine's running state for one instance build, so a delete can stop it. */
export interface BuildTicket {
  cancelled: boolean;
}

/** Quota amounts an instance of a flavor counts for. */
export function quotaDeltasOf(instance: Pick<Instance, 'flavor'>, count = 1): QuotaDeltas {
  return { instances: count, cores: instance.flavor.vcpus * count, ramMb: instance.flavor.ramMb * count };
}

/** Converts any thrown value into a fault record naming its cause. */
export function faultOf(error: unknown, at: number, extra?: Record<string, unknown>): Fault {
  if (error instanceof NovaError) {
    const cause = error.cause instanceof Error ? { cause: error.cause.message } : {};
    return {
      code: error.code,
      message: error.message,
      at,
      details: { ...error.details, ...cause, ...extra },
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'NLFS_UNEXPECTED', message, at, ...(extra ? { details: extra } : {}) };
}

/**
 * Shared machinery of the lifecycle flows: state updates that emit events, action history,
 * build tickets. One per engine.
 */
export class EngineContext {
  readonly events = new Subject<InstanceEvent>();
  /** Builds in progress, by instance id. */
  readonly builds = new Map<string, BuildTicket>();
  /** Deletes in progress, by instance id (a second delete joins the first). */
  readonly deletes = new Map<string, Promise<void>>();

  constructor(readonly deps: EngineDeps) {}

  now(): number {
    return this.deps.clock.now();
  }

  /** Emits an event if anyone listens (the event object is not even built otherwise). */
  emit(make: () => InstanceEvent): void {
    if (this.events.observed) this.events.next(make());
  }

  /**
   * Compare-and-set update from a known snapshot; emits a state event when a state changed.
   * @throws RevisionConflictError / NotFoundError from the store.
   */
  async apply(instance: Instance, patch: InstancePatch): Promise<Instance> {
    const next = await this.deps.instances.update(instance.id, instance.revision, patch, this.now());
    this.emitStateChange(instance, next);
    return next;
  }

  /**
   * Update made by the owner of task `task`: retries on revision conflicts caused by others
   * (e.g. power-state sync) as long as the stored task is still `task`. Returns `undefined` when
   * the instance is gone or another task (a delete) took it over.
   */
  async applyAsTaskOwner(
    instance: Instance,
    task: TaskState | null,
    patch: InstancePatch,
  ): Promise<Instance | undefined> {
    let current = instance;
    for (let attempt = 0; attempt < 20; attempt++) {
      if (current.taskState !== task) return undefined;
      try {
        return await this.apply(current, patch);
      } catch (e) {
        if (e instanceof NotFoundError) return undefined;
        if (!(e instanceof RevisionConflictError)) throw e;
        const fresh = await this.deps.instances.get(instance.id);
        if (!fresh) return undefined;
        current = fresh;
      }
    }
    throw new RevisionConflictError('instance', instance.id, current.revision, -1);
  }

  private emitStateChange(before: Instance, after: Instance): void {
    if (!this.events.observed) return;
    if (
      before.vmState === after.vmState &&
      before.taskState === after.taskState &&
      before.powerState === after.powerState
    ) {
      return;
    }
    this.events.next({
      type: 'instance.state',
      instanceId: after.id,
      at: after.updatedAt,
      vmState: after.vmState,
      taskState: after.taskState,
      powerState: after.powerState,
      previous: { vmState: before.vmState, taskState: before.taskState, powerState: before.powerState },
      hostId: after.hostId,
    });
  }

  /** Records the start of an action in the instance's history. */
  async startAction(
    instanceId: string,
    action: InstanceActionName,
    ctx: RequestContext | undefined,
  ): Promise<InstanceAction> {
    const record: InstanceAction = {
      id: newId(),
      instanceId,
      action,
      requestId: ctx?.requestId ?? newId(),
      userId: ctx?.userId ?? null,
      projectId: ctx?.projectId ?? null,
      startedAt: this.now(),
      finishedAt: null,
      result: 'pending',
      fault: null,
    };
    await this.deps.actions.start(record);
    this.emitAction(record);
    return record;
  }

  /** Records how an action ended. */
  async finishAction(action: InstanceAction, fault: Fault | null): Promise<void> {
    this.emitAction(await this.recordActionEnd(action, fault));
  }

  /**
   * Records how an action ended without emitting its event, for a caller that writes something
   * else alongside and emits both in order ({@link EngineContext.emitAction}).
   */
  async recordActionEnd(action: InstanceAction, fault: Fault | null): Promise<InstanceAction> {
    const finishedAt = this.now();
    const result = fault ? 'error' : 'success';
    await this.deps.actions.finish(action.id, { result, finishedAt, fault });
    return { ...action, result, finishedAt, fault };
  }

  /** Emits an action's `instance.action` event (as started, or ended by {@link EngineContext.recordActionEnd}). */
  emitAction(ended: InstanceAction): void {
    this.emit(() => ({
      type: 'instance.action',
      instanceId: ended.instanceId,
      at: ended.finishedAt ?? ended.startedAt,
      action: ended,
    }));
  }

  /** Emits a fault event. */
  emitFault(instanceId: string, hostId: string | null, fault: Fault): void {
    this.emit(() => ({ type: 'instance.fault', instanceId, at: fault.at, fault, hostId }));
  }
}
