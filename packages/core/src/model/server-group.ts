import { z } from 'zod';
import { displayNameSchema, idSchema } from './names.js';

/** Server group policies (Nova's). `soft-*` are preferences, the others hard constraints. */
export const serverGroupPolicies = [
  'affinity',
  'anti-affinity',
  'soft-affinity',
  'soft-anti-affinity',
] as const;
/** A server group policy. */
export type ServerGroupPolicy = (typeof serverGroupPolicies)[number];

/** A server group: instances placed together or apart. */
export const serverGroupSchema = z.object({
  id: idSchema,
  name: displayNameSchema,
  projectId: idSchema,
  policy: z.enum(serverGroupPolicies),
  /** Member instance ids. */
  members: z.array(z.string()).default([]),
});
/** A server group. */
export type ServerGroup = z.output<typeof serverGroupSchema>;
/** Server group fields as callers write them. */
export type ServerGroupInput = Omit<z.input<typeof serverGroupSchema>, 'members'>;
