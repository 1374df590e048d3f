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
] as const;
/** A lifecycle action name. */
export type InstanceActionName = (typeof instanceActionNames)[number];

/** Who asked for an action (Nova's request context, reduced). */
export interface RequestContext {
  readonly userId?: string;
  readonly projectId?: string;
  /** Correlates the action with the caller's request; generated when absent. */
  readonly requestId?: string;
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
