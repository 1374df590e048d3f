import { z } from 'zod';
import { EngineClosedError, InstanceLockedError, NotFoundError, RevisionConflictError } from '../errors.js';
import type { RequestContext } from '../model/action.js';
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
 */
export class LockFlow {
  constructor(private readonly ctx: EngineContext) {}

  /**
   * @throws ValidationError (field `reason`: at most 255 characters of plain text); NotFoundError
   */
  async lock(id: string, options: { reason?: string } = {}, request?: RequestContext): Promise<Instance> {
    const { reason } = parseInput(lockReasonSchema, options);
    return this.change(id, 'lock', (i) => {
      if (i.locked) return undefined;
      const lock: InstanceLock = {
        by: isAdminRequest(request) ? 'admin' : 'owner',
        reason: reason ?? null,
        userId: request?.userId ?? null,
        at: this.ctx.now(),
      };
      return lock;
    });
  }

  /** @throws InstanceLockedError when a non-admin unlocks an admin's lock; NotFoundError */
  async unlock(id: string, request?: RequestContext): Promise<Instance> {
    return this.change(id, 'unlock', (i) => {
      if (!i.locked) return undefined;
      if (i.locked.by === 'admin' && !isAdminRequest(request)) {
        throw new InstanceLockedError(i.id, 'unlock', i.locked.by, i.locked.reason);
      }
      return null;
    });
  }

  /** Applies the lock `next` computes (`undefined`: nothing to change), retrying lost updates. */
  private async change(
    id: string,
    operation: string,
    next: (i: Instance) => InstanceLock | null | undefined,
  ): Promise<Instance> {
    if (this.ctx.closed) throw new EngineClosedError(operation);
    for (let attempt = 0; attempt < 20; attempt++) {
      const instance = await this.ctx.deps.instances.get(id);
      if (!instance) throw new NotFoundError('instance', id, 'id');
      const lock = next(instance);
      if (lock === undefined) return instance;
      try {
        return await this.ctx.apply(instance, { locked: lock });
      } catch (e) {
        if (!(e instanceof RevisionConflictError)) throw e;
      }
    }
    throw new RevisionConflictError('instance', id, -1, -1);
  }
}
