import type { InstanceEvent } from '../engine/events.js';
import type { InstanceAction } from '../model/action.js';
import type { Instance } from '../model/instance.js';
import type { QuotaDeltas } from '../model/quota.js';
import type { QuotaEngine } from './quota.js';

/**
 * One write of a {@link UnitOfWork}. Writes are data, not callbacks: a unit never needs one write's
 * result to build the next, so a store can send a whole unit in one round trip (and a batching
 * store can send many units together), while atomicity stays a contract of the port.
 */
export type StoreWrite =
  /** Inserts an instance record. Fails the unit (DuplicateError) if the id exists. */
  | { readonly kind: 'instance.insert'; readonly instance: Instance }
  /**
   * Replaces the instance record with `instance` if the stored revision is `expectedRevision`
   * (`instance.revision` is `expectedRevision + 1`). Fails the unit with RevisionConflictError on a
   * lost update and NotFoundError if the record is gone.
   */
  | { readonly kind: 'instance.update'; readonly instance: Instance; readonly expectedRevision: number }
  /**
   * Removes the instance record. With `expectedRevision`, only if the stored revision is that one
   * (fails the unit with RevisionConflictError, or NotFoundError if it is gone: another process
   * removed it); without, idempotent.
   */
  | { readonly kind: 'instance.remove'; readonly id: string; readonly expectedRevision?: number }
  /** Records a started action. */
  | { readonly kind: 'action.start'; readonly action: InstanceAction }
  /** Records how an action ended (`action` is the ended record; matched by `action.id`). */
  | { readonly kind: 'action.finish'; readonly action: InstanceAction }
  /** Adds instances to a server group. Fails the unit (NotFoundError) if the group is gone. */
  | { readonly kind: 'group.addMembers'; readonly groupId: string; readonly instanceIds: readonly string[] }
  /** Removes an instance from a server group. Idempotent (also when the group is gone). */
  | { readonly kind: 'group.removeMember'; readonly groupId: string; readonly instanceId: string }
  /**
   * Adds `deltas` to the project's counted quota usage if every limit still holds (usage plus
   * in-flight reservations plus `deltas`); fails the unit with QuotaExceededError otherwise. Only
   * for a unit whose {@link UnitOfWork.quota} is the engine's quota engine.
   */
  | { readonly kind: 'quota.consume'; readonly projectId: string; readonly deltas: QuotaDeltas }
  /** Takes `deltas` off the project's counted usage (never below zero). Same condition as above. */
  | { readonly kind: 'quota.release'; readonly projectId: string; readonly deltas: QuotaDeltas }
  /** Appends an event to the durable event log (the outbox): it gets the next sequence number. */
  | { readonly kind: 'event'; readonly event: InstanceEvent };

/** An event as the durable log keeps it: its place in the log and its owner project. */
export interface LoggedEvent {
  /** Position in the log: strictly increasing in commit order, never reused. */
  readonly seq: number;
  readonly event: InstanceEvent;
  /** The project of the event's instance, as the log recorded it (from its `instance.created`). */
  readonly projectId?: string;
}

/**
 * Atomic steps: a list of writes that all commit or none does. Admission (records, actions, group
 * membership, their events), "go active and end the action" and "remove and end the action" are
 * each one unit. Memory, SQLite and PostgreSQL implement it natively.
 */
export interface UnitOfWork {
  /**
   * The quota engine whose usage this unit's `quota.consume` and `quota.release` writes change,
   * atomically with the rest of the unit. When it is the engine's quota engine, admission
   * consumes quota in its unit and removal releases it in its own; otherwise (no quota here, or
   * another engine) admission reserves before its unit and commits after it, and removal
   * releases after its unit, and the unit refuses quota writes.
   */
  readonly quota?: QuotaEngine;
  /**
   * Applies `writes` in order, all or none; resolves once committed, with the events of the unit
   * as logged (in the order given). Rejects with the first write's typed error (DuplicateError,
   * RevisionConflictError, NotFoundError, QuotaExceededError) and nothing written.
   */
  commit(writes: readonly StoreWrite[]): Promise<readonly LoggedEvent[]>;
}

/** Filter of {@link EventLog.read}. */
export interface EventLogFilter {
  readonly instanceId?: string;
  /** Only events of this project's instances (events carry no project: the log records it). */
  readonly projectId?: string;
}

/**
 * The durable event log (written through {@link UnitOfWork}): a cursor replays what happened
 * after it. Retention drops the oldest events; a cursor older than the retained range resumes at
 * the oldest kept event ({@link EventLog.oldest} tells where that is).
 */
export interface EventLog {
  /** Events with `seq > since`, oldest first, at most `limit`. */
  read(since: number, limit: number, filter?: EventLogFilter): Promise<LoggedEvent[]>;
  /** The highest sequence number committed (0 when empty). */
  head(): Promise<number>;
  /** The lowest sequence number still kept (0 when empty). */
  oldest(): Promise<number>;
  /** Drops events older than `olderThan` (epoch ms) and beyond the newest `keepLast`. Returns how many. */
  prune(retention: { olderThan?: number; keepLast?: number }): Promise<number>;
}

/** A lease: who owns a host (or any named resource) until when. */
export interface Lease {
  readonly name: string;
  readonly owner: string;
  /** Epoch ms after which another owner may take it. */
  readonly expiresAt: number;
}

/**
 * Ownership through leases in the store: two live processes never own one name. A process owns a
 * host while it renews the host's lease; once a dead owner's lease expires, another takes it.
 */
export interface LeaseStore {
  /**
   * Takes or renews the lease if it is free, expired or already `owner`'s; resolves with the
   * lease as it now stands (its `owner` tells whether this call got it).
   */
  acquire(name: string, owner: string, ttlMs: number, now: number): Promise<Lease>;
  /** Gives the lease up if `owner` holds it. Idempotent. */
  release(name: string, owner: string): Promise<void>;
  /** Every lease (expired ones included). */
  list(): Promise<Lease[]>;
}
