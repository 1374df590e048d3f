import type { z } from 'zod';
import { busNameSchema } from './subjects.js';

/**
 * One RPC method, shared by the agent that serves it and the control plane that calls it: its
 * name (the last tokens of `nova.agent.<hostId>.rpc.<name>`) and the zod schemas of its payload
 * and result, checked on both sides of the wire.
 */
export interface RpcMethod<P, R> {
  readonly name: string;
  readonly payload: z.ZodType<P>;
  readonly result: z.ZodType<R>;
}

/**
 * Defines an RPC method. Throws a zod error if `name` is not dot-separated tokens of letters,
 * digits, `_` and `-`.
 */
export function defineRpcMethod<P, R>(
  name: string,
  payload: z.ZodType<P>,
  result: z.ZodType<R>,
): RpcMethod<P, R> {
  return Object.freeze({ name: busNameSchema.parse(name), payload, result });
}
