import { v7 } from 'uuid';

/**
 * A new record id: a UUID version 7 (RFC 9562). Its leading millisecond timestamp makes ids
 * created later sort later, so database indexes on instance, action and claim ids grow at one
 * end (a handful of pages written per commit) instead of at random pages.
 */
export function newId(): string {
  return v7();
}
