import type { InstanceEvent } from '../engine/events.js';
import { DuplicateError, NotFoundError, RevisionConflictError } from '../errors.js';
import type { Instance } from '../model/instance.js';
import type { QuotaDeltas } from '../model/quota.js';
import type { LoggedEvent, StoreWrite, UnitOfWork } from '../ports/unit-of-work.js';
import type { CountingQuotaEngine } from '../quota/counting-quota-engine.js';
import { MemoryActionStore } from './memory-action-store.js';
import { MemoryEventLog } from './memory-event-log.js';
import { MemoryInstanceStore } from './memory-instance-store.js';
import { MemoryServerGroupStore } from './memory-server-group-store.js';

/** The memory stores a {@link MemoryUnitOfWork} writes. */
export interface MemoryUnitStores {
  readonly instances: MemoryInstanceStore;
  readonly actions: MemoryActionStore;
  readonly groups: MemoryServerGroupStore;
  readonly events: MemoryEventLog;
  /** The quota engine `quota.consume` and `quota.release` writes change (none: they are refused). */
  readonly quota?: CountingQuotaEngine;
}

/**
 * {@link UnitOfWork} over the memory stores: every write is checked against the state the
 * earlier writes of the unit leave, then all are applied in one synchronous step, so no other
 * caller ever sees part of a unit and a failing check leaves nothing written. Quota writes change
 * the counting quota engine of the stores, checked and applied the same way.
 */
export class MemoryUnitOfWork implements UnitOfWork {
  readonly quota: CountingQuotaEngine | undefined;

  constructor(private readonly stores: MemoryUnitStores) {
    this.quota = stores.quota;
  }

  async commit(writes: readonly StoreWrite[]): Promise<readonly LoggedEvent[]> {
    this.check(writes);
    const { instances, actions, groups, events } = this.stores;
    const logged: InstanceEvent[] = [];
    for (const w of writes) {
      switch (w.kind) {
        case 'instance.insert':
        case 'instance.update':
          instances.put(w.instance);
          break;
        case 'instance.remove':
          void instances.remove(w.id);
          break;
        case 'action.start':
          actions.startNow(w.action);
          break;
        case 'action.finish':
          actions.finishNow(w.action.id, w.action);
          break;
        case 'group.addMembers':
          groups.addMembersNow(w.groupId, w.instanceIds);
          break;
        case 'group.removeMember':
          groups.removeMemberNow(w.groupId, w.instanceId);
          break;
        case 'quota.consume':
          this.quota!.consumeNow(w.projectId, w.deltas);
          break;
        case 'quota.release':
          this.quota!.releaseNow(w.projectId, w.deltas);
          break;
        case 'event':
          logged.push(w.event);
          break;
      }
    }
    return logged.length ? events.appendAll(logged) : [];
  }

  /** Throws the first write's error against the state left by the writes before it. */
  private check(writes: readonly StoreWrite[]): void {
    // most units write one instance: no staging map needed then
    let instanceWrites = 0;
    let consumes = 0;
    for (const w of writes) {
      if (w.kind === 'instance.insert' || w.kind === 'instance.update' || w.kind === 'instance.remove')
        instanceWrites++;
      else if (w.kind === 'quota.consume' || w.kind === 'quota.release') {
        if (!this.quota) throw new Error(`this unit of work has no quota engine: ${w.kind} refused`);
        if (w.kind === 'quota.consume') consumes++;
      }
    }
    // a project consuming twice in one unit is checked against both (rare: summed only then)
    const consumed = consumes > 1 ? new Map<string, QuotaDeltas>() : undefined;
    if (instanceWrites <= 1) {
      for (const w of writes) {
        if (w.kind === 'quota.consume') this.checkConsume(w.projectId, w.deltas, consumed);
        else this.checkOne(w, this.stores.instances.peek(instanceIdOf(w) ?? ''));
      }
      return;
    }
    const staged = new Map<string, Instance | null>();
    const current = (id: string) => (staged.has(id) ? staged.get(id) : this.stores.instances.peek(id));
    for (const w of writes) {
      if (w.kind === 'quota.consume') {
        this.checkConsume(w.projectId, w.deltas, consumed);
      } else if (w.kind === 'instance.insert') {
        if (current(w.instance.id)) throw new DuplicateError('instance', w.instance.id);
        staged.set(w.instance.id, w.instance);
      } else if (w.kind === 'instance.update') {
        const cur = current(w.instance.id);
        if (!cur) throw new NotFoundError('instance', w.instance.id);
        if (cur.revision !== w.expectedRevision) {
          throw new RevisionConflictError('instance', w.instance.id, w.expectedRevision, cur.revision);
        }
        staged.set(w.instance.id, w.instance);
      } else if (w.kind === 'instance.remove') {
        if (w.expectedRevision !== undefined) {
          const cur = current(w.id);
          if (!cur) throw new NotFoundError('instance', w.id);
          if (cur.revision !== w.expectedRevision) {
            throw new RevisionConflictError('instance', w.id, w.expectedRevision, cur.revision);
          }
        }
        staged.set(w.id, null);
      } else if (w.kind === 'group.addMembers' && !this.stores.groups.has(w.groupId)) {
        throw new NotFoundError('serverGroup', w.groupId);
      }
    }
  }

  /** Checks a `quota.consume` (with what the unit consumed before for the project, if tracked). */
  private checkConsume(
    projectId: string,
    deltas: QuotaDeltas,
    consumed: Map<string, QuotaDeltas> | undefined,
  ) {
    const before = consumed?.get(projectId);
    const total = before
      ? {
          instances: before.instances + deltas.instances,
          cores: before.cores + deltas.cores,
          ramMb: before.ramMb + deltas.ramMb,
        }
      : deltas;
    this.quota!.checkConsume(projectId, total);
    consumed?.set(projectId, total);
  }

  /** Checks one write against the stored record of its instance (units with one instance write). */
  private checkOne(w: StoreWrite, current: Instance | undefined): void {
    if (w.kind === 'instance.insert') {
      if (current) throw new DuplicateError('instance', w.instance.id);
    } else if (w.kind === 'instance.update') {
      if (!current) throw new NotFoundError('instance', w.instance.id);
      if (current.revision !== w.expectedRevision) {
        throw new RevisionConflictError('instance', w.instance.id, w.expectedRevision, current.revision);
      }
    } else if (w.kind === 'instance.remove' && w.expectedRevision !== undefined) {
      if (!current) throw new NotFoundError('instance', w.id);
      if (current.revision !== w.expectedRevision) {
        throw new RevisionConflictError('instance', w.id, w.expectedRevision, current.revision);
      }
    } else if (w.kind === 'group.addMembers' && !this.stores.groups.has(w.groupId)) {
      throw new NotFoundError('serverGroup', w.groupId);
    }
  }
}

function instanceIdOf(w: StoreWrite): string | undefined {
  if (w.kind === 'instance.insert' || w.kind === 'instance.update') return w.instance.id;
  if (w.kind === 'instance.remove') return w.id;
  return undefined;
}

/**
 * Fresh memory instance, action and group stores with their event log and unit of work (which
 * applies quota writes to `quota` when given).
 */
export function memoryUnitStores(
  quota?: CountingQuotaEngine,
): MemoryUnitStores & { readonly unit: MemoryUnitOfWork } {
  const stores = {
    instances: new MemoryInstanceStore(),
    actions: new MemoryActionStore(),
    groups: new MemoryServerGroupStore(),
    events: new MemoryEventLog(),
    ...(quota ? { quota } : {}),
  };
  return { ...stores, unit: new MemoryUnitOfWork(stores) };
}
