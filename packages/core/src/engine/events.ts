import type { InstanceAction } from '../model/action.js';
import type { Fault, Instance } from '../model/instance.js';
import type { MigrationRecord } from '../model/migration.js';
import type { PowerState, TaskState, VmState } from '../model/states.js';

/** The three states of an instance at one moment. */
export interface InstanceStates {
  readonly vmState: VmState;
  readonly taskState: TaskState | null;
  readonly powerState: PowerState;
}

interface EventBase {
  readonly instanceId: string;
  /** Epoch milliseconds. */
  readonly at: number;
}

/** An instance record was created (state building/scheduling). */
export interface InstanceCreatedEvent extends EventBase {
  readonly type: 'instance.created';
  readonly instance: Instance;
}
/** vmState, taskState or powerState changed. */
export interface InstanceStateEvent extends EventBase, InstanceStates {
  readonly type: 'instance.state';
  readonly previous: InstanceStates;
  readonly hostId: string | null;
}
/** The scheduler placed the instance (first attempt or reschedule). */
export interface InstanceScheduledEvent extends EventBase {
  readonly type: 'instance.scheduled';
  readonly hostId: string;
  readonly attempt: number;
  readonly alternateHostIds: readonly string[];
}
/** A build failed on a host and moves to an alternate. */
export interface InstanceRescheduledEvent extends EventBase {
  readonly type: 'instance.rescheduled';
  readonly fromHostId: string;
  readonly toHostId: string;
  readonly cause: Fault;
}
/** Something went wrong (the instance may or may not be in ERROR). */
export interface InstanceFaultEvent extends EventBase {
  readonly type: 'instance.fault';
  readonly fault: Fault;
  readonly hostId: string | null;
}
/** An action started or finished. */
export interface InstanceActionEvent extends EventBase {
  readonly type: 'instance.action';
  readonly action: InstanceAction;
}
/** The instance is gone (terminal event of `watch`). */
export interface InstanceDeletedEvent extends EventBase {
  readonly type: 'instance.deleted';
}
/** A guest runs on a host but the store does not know it (found by reconciliation or events). */
export interface InstanceOrphanEvent extends EventBase {
  readonly type: 'instance.orphan';
  readonly hostId: string;
  readonly powerState: PowerState;
  /** The engine destroyed it (`reapOrphans`). */
  readonly reaped: boolean;
}

/**
 * A move's migration record changed: its status, its destination, or (live migration) its
 * progress (data remaining, dirty rate, expected downtime).
 */
export interface InstanceMigrationEvent extends EventBase {
  readonly type: 'instance.migration';
  readonly migration: MigrationRecord;
}

/** Every event of the engine's `events$`. */
export type InstanceEvent =
  | InstanceCreatedEvent
  | InstanceStateEvent
  | InstanceScheduledEvent
  | InstanceRescheduledEvent
  | InstanceFaultEvent
  | InstanceActionEvent
  | InstanceDeletedEvent
  | InstanceOrphanEvent
  | InstanceMigrationEvent;

/** Event type names. */
export type InstanceEventType = InstanceEvent['type'];
