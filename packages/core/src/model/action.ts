import { z } from 'zod';
import { faultSchema } from './instance.js';

/** Lifecycle actions an instance accepts. */
export const instanceActionNames = [
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
] as const;
/** A lifecycle action name. */
export type InstanceActionName = (typeof instanceActionNames)[number];

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
