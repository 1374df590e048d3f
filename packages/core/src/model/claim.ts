import { z } from 'zod';
import { idSchema, uuidSchema } from './names.js';
import { resourcesSchema } from './resources.js';

/** Resources allocated to one instance on one host (a Placement allocation). */
export const claimSchema = z.object({
  id: z.string().min(1),
  instanceId: uuidSchema,
  hostId: idSchema,
  resources: resourcesSchema,
  createdAt: z.number(),
});
/** Resources allocated to one instance on one host. */
export type Claim = z.output<typeof claimSchema>;
