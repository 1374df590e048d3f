import { z } from 'zod';
import { EngineClosedError, InstanceLockedError, NotFoundError, RevisionConflictError } from '../errors.js';
import type { InstantActionName, RequestContext } from '../model/action.js';
import type { Instance, InstanceLock } from '../model/instance.js';
import { plainTextSchema } from '../model/names.js';
import { parseInput } from '../model/validation.js';
import type { EngineContext } from './engine-context.js';

/** Whether the caller counts as an admin: one who passes no request context is the operator. */
export function isAdminRequest(request: RequestContext | undefined): boolean {
  return request === undefined || request.isAdmin === true;
}

/**
 * Refuses `action` on a locked instance for a caller who is not an admin (Nova's
 * `check_instance_lock`). Called before any state changes.
 * @throws InstanceLockedError
 */
export function assertNotLocked(
  instance: Pick<Instance, 'id' | 'locked'>,
  action: string,
  request: RequestContext | undefined,
): void {
  const lock = instance.locked;
  if (lock && !isAdminRequest(request)) {
    throw new InstanceLockedError(instance.id, action, lock.by, lock.reason);
  }
}

const lockReasonSchema = z.object({ reason: plainTextSchema(255).optional() }).strict();

/**
 * Lock and unlock with a reason (Nova's `lock` / `unlock` server actions): accepted in every live
 * state and over a task in progress (a lock is no task). A locked instance refuses actions from
 * callers who are not admins; an admin's lock is lifted only by an admin, an owner's by the owner or
 * an admin. Locking a locked instance keeps the first lock (Nova does the same).
 *
 * Both are instant actions: the `lock` or `unlock` entry of the action history (caller's user,
 * project and request id; started and finished at once, success) is written in the same unit of
 * work as the `locked` change, so the history never shows a lock that did not happen nor misses one
 * that did. A lock of a locked instance changes nothing and records nothing (Nova returns early for
 * it too); an unlock is recorded even when the instance was not locked, as Nova records it.
 */
export class LockFlow {
  constructor(private readonly ctx: EngineContext) {}

  /**
   * @throws ValidationError (field `reason`: at most 255 characters of plain text); NotFoundError
   */
  async lock(id: string, options: { reason?: string } = {}, request?: RequestContext): Promise<Instance> {
    const { reason } = parseInput(lockReasonSchema, options);
    return this.change(id, 'lock', request, (i) => {
      if (i.locked) return 'unchanged';
      const lock: InstanceLock = {
        by: isAdminRequest(request) ? 'admin' : 'owner',
        reason: reason ?? null,
        userId: request?.userId ?? null,
        at: this.ctx.now(),
      };
      return { locked: lock };
    });
  }

  /** @throws InstanceLockedError when a non-admin unlocks an admin's lock; NotFoundError */
  async unlock(id: string, request?: RequestContext): Promise<Instance> {
    return this.change(id, 'unlock', request, (i) => {
      if (!i.locked) return 'recorded';
      if (i.locked.by === 'admin' && !isAdminRequest(request)) {
        throw new InstanceLockedError(i.id, 'unlock', i.locked.by, i.locked.reason);
      }
      return { locked: null };
    });
  }

  /**
   * Applies the change `next` computes with the action's record in one unit, retrying lost
   * updates. `next` answers `unchanged` (nothing written), `recorded` (the action alone, the
   * instance as it is) or the new lock.
   */
  private async change(
    id: string,
    action: InstantActionName,
    request: RequestContext | undefined,
    next: (i: Instance) => { readonly locked: InstanceLock | null } | 'unchanged' | 'recorded',
  ): Promise<Instance> {
    if (this.ctx.closed) throw new EngineClosedError(action);
    for (let attempt = 0; attempt < 20; attempt++) {
      const instance = await this.ctx.deps.instances.get(id);
      if (!instance) throw new NotFoundError('instance', id, 'id');
      const change = next(instance);
      if (change === 'unchanged') return instance;
      const recorded = this.ctx.instantAction(id, action, request);
      if (change === 'recorded') {
        await this.ctx.commit(recorded.writes);
        return instance;
      }
      try {
        return await this.ctx.apply(instance, { locked: change.locked }, recorded.writes);
      } catch (e) {
        if (!(e instanceof RevisionConflictError)) throw e;
      }
    }
    throw new RevisionConflictError('instance', id, -1, -1);
  }
}
