import type { z } from 'zod';
import { busNameSchema } from './subjects.js';

/**
 * One kind of host event (e.g. `instance.power`), shared by the agent that publishes it and the
 * control plane that reads it: its type name and the zod schema of its payload.
 */
export interface BusEvent<P> {
  readonly type: string;
  readonly payload: z.ZodType<P>;
}

/** Defines a host event. Throws a zod error if `type` is not dot-separated name tokens. */
export function defineBusEvent<P>(type: string, payload: z.ZodType<P>): BusEvent<P> {
  return Object.freeze({ type: busNameSchema.parse(type), payload });
}
