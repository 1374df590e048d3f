import type { InstanceAction } from '../model/action.js';
import type { Claim } from '../model/claim.js';
import type { Flavor } from '../model/flavor.js';
import type { Host } from '../model/host.js';
import type { Instance, InstancePatch } from '../model/instance.js';
import type { MigrationFilter, MigrationRecord } from '../model/migration.js';
import type { ServerGroup } from '../model/server-group.js';
import type { VmState } from '../model/states.js';
import type { ImageRecord } from './image-service.js';
import type { EventLog, LeaseStore, UnitOfWork } from './unit-of-work.js';

/**
 * Filter and page of an instance list. Records come sorted by (`createdAt`, `id`) ascending, a
 * stable order: pages fetched with `limit` and `marker` concatenate to the full filtered list.
 */
export interface InstanceFilter {
  readonly projectId?: string;
  readonly hostId?: string;
  /** Only instances with a task in progress. */
  readonly withTask?: boolean;
  /** Only instances in one of these vm states (Nova's `status` filter; empty matches none). */
  readonly status?: readonly VmState[];
  /**
   * Only instances whose name contains this text, ignoring case. A plain substring, not a regular
   * expression (Nova's `name` filter is a regex: a caller translating it passes the literal text).
   */
  readonly name?: string;
  /** Only instances changed at or after this time (`updatedAt >= changesSince`, epoch ms). */
  readonly changesSince?: number;
  /** At most this many records (a non-negative integer). */
  readonly limit?: number;
  /**
   * An instance id: only records after it in the sort order (the last id of the previous page).
   * The marker must exist (filtered out is fine): an unknown one throws NotFoundError with field
   * `marker`.
   */
  readonly marker?: string;
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
  /**
   * Records matching `filter`, sorted by (`createdAt`, `id`) ascending, paged by its `limit` and
   * `marker`.
   * @throws NotFoundError (field `marker`) if `filter.marker` names no instance.
   */
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

/** Migration records: one per move of an instance (Nova's migrations table). */
export interface MigrationStore {
  /** Adds the record, or replaces the one with the same id. */
  put(record: MigrationRecord): Promise<void>;
  get(id: string): Promise<MigrationRecord | undefined>;
  /** Records matching the filter, oldest first (by `createdAt`, then id). */
  list(filter?: MigrationFilter): Promise<MigrationRecord[]>;
}

/** Flavors offered. */
export interface FlavorStore {
  get(id: string): Promise<Flavor | undefined>;
  list(): Promise<Flavor[]>;
  /** @throws DuplicateError if the id exists. */
  add(flavor: Flavor): Promise<void>;
  /**
   * Replaces an existing flavor's record in one step (readers see the old or the new one, never
   * none). @returns false if no flavor has that id
   */
  replace(flavor: Flavor): Promise<boolean>;
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

/**
 * The image catalog: each image's metadata and, for a registered image not fetched yet, the
 * location of its bytes. The bytes themselves live in the image service's cache.
 */
export interface ImageStore {
  get(id: string): Promise<ImageRecord | undefined>;
  /** Every image, ordered by id. */
  list(): Promise<ImageRecord[]>;
  /** Adds the record, or replaces the one with the same `image.id`. */
  put(record: ImageRecord): Promise<void>;
  /** Removes the record. Idempotent. */
  remove(id: string): Promise<void>;
  /** Whether any image in the catalog has bytes with this sha256 (cached bytes still in use). */
  hasSha256(sha256: string): Promise<boolean>;
  /**
   * Where an image service on this catalog keeps its cached bytes unless told otherwise: beside
   * the database for a store kept in files (one cache per catalog); `undefined` for a store kept
   * in memory (the service then uses a temporary directory of its own).
   */
  readonly cacheDir?: string;
}

/** Stores the engine uses; each defaults to its in-memory implementation. */
export interface CoreStores {
  readonly instances?: InstanceStore;
  readonly hosts?: HostStore;
  readonly claims?: ClaimStore;
  readonly actions?: ActionStore;
  readonly flavors?: FlavorStore;
  readonly groups?: ServerGroupStore;
  /** The image catalog of the default image service. */
  readonly images?: ImageStore;
  /** Migration records (moves of instances). */
  readonly migrations?: MigrationStore;
  /**
   * Atomic steps over these stores. Required with custom stores that the engine writes
   * (the memory and SQL stores bring their own).
   */
  readonly unit?: UnitOfWork;
  /** The durable event log the unit of work appends to. */
  readonly events?: EventLog;
  /** Leases: which process owns which host. */
  readonly leases?: LeaseStore;
  /**
   * No other process uses these stores (memory, or SQLite opened exclusively): every task not
   * running in this process is a crash's leftover, healed at once. Default: true when no `leases`
   * are given.
   */
  readonly exclusive?: boolean;
}
