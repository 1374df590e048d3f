import type { Generated } from 'kysely';

/** Tables of the Nova LFS database (JSON documents in text columns, indexed columns beside them). */
export interface Database {
  instances: {
    id: string;
    project_id: string;
    host_id: string | null;
    task_state: string | null;
    revision: number;
    data: string;
    /** Epoch ms (the record's `createdAt`): the list order, with `id`. */
    created_at: number | null;
    updated_at: number | null;
    vm_state: string | null;
    name: string | null;
  };
  hosts: { id: string; data: string };
  host_generations: { host_id: string; generation: number };
  host_usage: { host_id: string; resource_class: string; used: number };
  claims: { id: string; instance_id: string; host_id: string; data: string };
  instance_actions: {
    seq: Generated<number>;
    id: string;
    instance_id: string;
    result: string;
    /** The action as started (JSON). */
    data: string;
    finished_at: number | null;
    /** Fault JSON, when it ended in error. */
    fault: string | null;
  };
  instance_events: {
    /**
     * Position in the log of the row's last event (commit order): from `instance_event_head` on
     * PostgreSQL, above `sqlite_sequence` on SQLite.
     */
    seq: number;
    /** Events the row holds (numbered `seq - event_count + 1` to `seq`); 1 for rows before `0006_event_rows`. */
    event_count: number;
    instance_id: string;
    /** The instance's project (events carry none): filtered reads by project. */
    project_id: string | null;
    /** The first event's type. */
    type: string;
    /** The newest event's time (epoch ms). */
    at: number;
    /** One event (a JSON object) or, for rows of more, a JSON array of them. */
    data: string;
  };
  /** PostgreSQL only, one row (`id` 1): the highest event sequence number handed out. */
  instance_event_head: { id: number; seq: number };
  /** Who owns a named resource (a host) until when. */
  leases: { name: string; owner: string; expires_at: number };
  flavors: { id: string; data: string };
  server_groups: { id: string; project_id: string; data: string };
  quota_limits: { project_id: string; data: string };
  quota_usage: {
    project_id: string;
    instances: number;
    cores: number;
    ram_mb: number;
    /** Sums of the project's reservations, kept with the usage so admission is one update. */
    reserved_instances: number;
    reserved_cores: number;
    reserved_ram_mb: number;
  };
  quota_reservations: {
    id: string;
    project_id: string;
    instances: number;
    cores: number;
    ram_mb: number;
    created_at: number;
  };
}
