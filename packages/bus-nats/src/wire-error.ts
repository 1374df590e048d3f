import { ErrorCode, isNovaError } from '@nova-lfs/core';
import type { WireError } from './errors.js';

/** JSON-safe copy of `value`, or undefined if it cannot be serialised. */
function jsonSafe(value: unknown): Record<string, unknown> | undefined {
  try {
    const copy = JSON.parse(JSON.stringify(value)) as unknown;
    return typeof copy === 'object' && copy !== null && !Array.isArray(copy)
      ? (copy as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The wire form of a handler's failure: a Nova LFS error keeps its code, message and details
 * (plus `retryable` and `reschedule` where it says them); any other error becomes
 * `NLFS_UNEXPECTED` with its message. Stacks and causes never cross the wire.
 */
export function toWireError(e: unknown): WireError {
  if (isNovaError(e)) {
    const details = jsonSafe(e.details) ?? {};
    for (const flag of ['retryable', 'reschedule'] as const) {
      const value = (e as unknown as Record<string, unknown>)[flag];
      if (typeof value === 'boolean' && details[flag] === undefined) details[flag] = value;
    }
    return { code: e.code, message: e.message.slice(0, 4096), details };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: ErrorCode.Unexpected, message: message.slice(0, 4096), details: {} };
}
