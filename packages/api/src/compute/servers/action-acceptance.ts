import type { ComputeEngine } from '@nova-lfs/core';
import type { FastifyBaseLogger } from 'fastify';

/**
 * Runs an engine action and resolves as soon as the engine has accepted it (its task is taken and
 * its action recorded, seen as the `instance.action` event of this request), as Nova answers 202
 * before the work is done. A refusal before that point (unknown server, wrong state, a task in
 * progress) rejects, so the caller answers 404 or 409; a failure after it is the action's outcome,
 * recorded on the server (fault, action result) and logged here.
 */
export function whenAccepted(
  engine: ComputeEngine,
  instanceId: string,
  requestId: string,
  run: () => Promise<unknown>,
  log?: FastifyBaseLogger,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let accepted = false;
    const subscription = engine.watch(instanceId).subscribe({
      next: (event) => {
        if (event.type === 'instance.action' && event.action.requestId === requestId) {
          accepted = true;
          subscription.unsubscribe();
          resolve();
        }
      },
      error: () => undefined,
    });
    run().then(
      () => {
        subscription.unsubscribe();
        if (!accepted) resolve();
      },
      (e: unknown) => {
        subscription.unsubscribe();
        if (!accepted) reject(e);
        else log?.warn({ err: e, instanceId, requestId }, 'accepted action failed');
      },
    );
  });
}
