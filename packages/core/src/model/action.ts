import { z } from 'zod';
import { faultSchema } from './instance.js';

/**
 * Actions that run as a task: each takes a task state while it works and has a row in the
 * transition table (`transitions`).
 */
export const taskActionNames = [
  'create',
  'delete',
  'start',
  'stop',
  'reboot',
  'reboot_hard',
  'pause',
  'unpause',
  'suspend',
  'resume',
  'rebuild',
  'snapshot',
  /** Rebuild on another host because this one is down (Nova's evacuate). */
  'evacuate',
  // moves and changes (issue 15), named as Nova's instance actions name them
  'resize',
  'migrate',
  'confirmResize',
  'revertResize',
  'live-migration',
  'shelve',
  'shelveOffload',
  'unshelve',
  'rescue',
  'unrescue',
  'attach_volume',
  'detach_volume',
  'attach_interface',
  'detach_interface',
] as const;
/** The name of an action that runs as a task. */
export type TaskActionName = (typeof taskActionNames)[number];

/**
 * Instant actions: they start and end in the same unit of work as the change they make, take no
 * task state and have no transition (Nova records them in the action history all the same).
 */
export const instantActionNames = ['lock', 'unlock'] as const;
/** The name of an instant action. */
export type InstantActionName = (typeof instantActionNames)[number];

/** Every action an instance's history records: task actions, then instant ones. */
export const instanceActionNames = [...taskActionNames, ...instantActionNames] as const;
/** An action name of the history. */
export type InstanceActionName = (typeof instanceActionNames)[number];

/** Whether `action` is an instant action (no task state, no transition). */
export function isInstantAction(action: InstanceActionName): action is InstantActionName {
  return (instantActionNames as readonly string[]).includes(action);
}

/** Who asked for an action (Nova's request context, reduced). */
export interface RequestContext {
  readonly userId?: string;
  readonly projectId?: string;
  /** Correlates the action with the caller's request; generated when absent. */
  readonly requestId?: string;
  /**
   * The caller is an admin: acts on locked instances, unlocks any. A caller that passes no request
   * context at all is the engine's operator (an in-process SDK call) and counts as an admin; the
   * REST API always passes one.
   */
  readonly isAdmin?: boolean;
}

/** One entry of an instance's action history: what was asked, by whom, when, how it ended. */
export const instanceActionSchema = z.object({
  id: z.string(),
  instanceId: z.string(),
  action: z.enum(instanceActionNames),
  requestId: z.string(),
  userId: z.string().nullable(),
  projectId: z.string().nullable(),
  startedAt: z.number(),
  finishedAt: z.number().nullable(),
  result: z.enum(['pending', 'success', 'error']),
  fault: faultSchema.nullable(),
});
/** One entry of an instance's action history. */
export type InstanceAction = z.output<typeof instanceActionSchema>;
