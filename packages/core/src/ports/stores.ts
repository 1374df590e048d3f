import type { InstanceAction } from '../model/action.js';
import type { Claim } from '../model/claim.js';
import type { Flavor } from '../model/flavor.js';
import type { Host } from '../model/host.js';
import type { Instance, InstancePatch } from '../model/instance.js';
import type { ServerGroup } from '../model/server-group.js';

/** Filter for listing instances. */
export interface InstanceFilter {
  readonly projectId?: string;
  readonly hostId?: string;
  /** Only instances with a task in progress. */
  readonly withTask?: boolean;
}

/** Durable instance records, updated with compare-and-set on `revision`. */
export interface InstanceStore {
  /** @throws DuplicateError if the id exists. */
  insert(instance: Instance): Promise<void>;
  get(id: string): Promise<Instance | undefined>;
  /**
   * Applies `patch` if the stored revision equals `expectedRevision`; returns the new record
   * (revision + 1, `updatedAt` = `now`).
   * @throws RevisionConflictError on a lost update; NotFoundError if gone.
   */
  update(id: string, expectedRevision: number, patch: InstancePatch, now: number): Promise<Instance>;
  /** Removes the record. Idempotent. */
  remove(id: string): Promise<void>;
  list(filter?: InstanceFilter): Promise<Instance[]>;
}

/** Known hosts. */
export interface HostStore {
  upsert(host: Host): Promise<void>;
  get(id: string): Promise<Host | undefined>;
  list(): Promise<Host[]>;
  remove(id: string): Promise<void>;
}

/** Resource claims (allocations). */
export interface ClaimStore {
  /** @throws DuplicateError if the id exists. */
  add(claim: Claim): Promise<void>;
  /** Idempotent. */
  remove(claimId: string): Promise<void>;
  list(filter?: { hostId?: string; instanceId?: string }): Promise<Claim[]>;
}

/** Per-instance action history (Nova's instance actions). */
export interface ActionStore {
  start(action: InstanceAction): Promise<void>;
  /** Records how the action ended. */
  finish(actionId: string, result: Pick<InstanceAction, 'result' | 'finishedAt' | 'fault'>): Promise<void>;
  /** The instance's actions, oldest first. */
  list(instanceId: string): Promise<InstanceAction[]>;
  /** Actions still pending (reconciliation closes those a crash interrupted). */
  listPending(): Promise<InstanceAction[]>;
  /** The instance was deleted: the store may keep its history for a while, then drop it. */
  instanceDeleted(instanceId: string): Promise<void>;
}

/** Flavors offered. */
export interface FlavorStore {
  get(id: string): Promise<Flavor | undefined>;
  list(): Promise<Flavor[]>;
  /** @throws DuplicateError if the id exists. */
  add(flavor: Flavor): Promise<void>;
  remove(id: string): Promise<void>;
}

/** Server groups. */
export interface ServerGroupStore {
  get(id: string): Promise<ServerGroup | undefined>;
  list(projectId?: string): Promise<ServerGroup[]>;
  /** @throws DuplicateError if the id exists. */
  add(group: ServerGroup): Promise<void>;
  remove(id: string): Promise<void>;
  addMembers(id: string, instanceIds: readonly string[]): Promise<void>;
  removeMember(id: string, instanceId: string): Promise<void>;
}

/** Stores the engine uses; each defaults to its in-memory implementation. */
export interface CoreStores {
  readonly instances?: InstanceStore;
  readonly hosts?: HostStore;
  readonly claims?: ClaimStore;
  readonly actions?: ActionStore;
  readonly flavors?: FlavorStore;
  readonly groups?: ServerGroupStore;
}
