import type { Claim } from '../model/claim.js';
import type { Flavor } from '../model/flavor.js';
import type { Host } from '../model/host.js';
import type { Image } from '../model/image.js';
import type { SchedulerHints } from '../model/instance.js';
import type { ServerGroupPolicy } from '../model/server-group.js';

/** The server group a request joins, resolved by the engine: its policy and its members' hosts. */
export interface PlacementGroup {
  readonly id: string;
  readonly policy: ServerGroupPolicy;
  /**
   * Hosts of the group's existing members (repeated when several members share a host), as the
   * engine resolved them; a scheduler also counts the member claims it knows of.
   */
  readonly memberHostIds: readonly string[];
}

/** What the scheduler places: `instanceIds.length` instances of one flavor, all or nothing. */
export interface PlacementRequest {
  readonly requestId: string;
  readonly projectId: string;
  readonly instanceIds: readonly string[];
  readonly flavor: Flavor;
  readonly image: Image;
  readonly availabilityZone?: string;
  readonly hints: SchedulerHints;
  /** Hosts of the instances named in `hints.sameHost` / `hints.differentHost`, resolved by the engine. */
  readonly sameHostIds?: readonly string[];
  readonly differentHostIds?: readonly string[];
  readonly group?: PlacementGroup;
  /** Hosts to leave out (e.g. already failed for this build). */
  readonly excludedHostIds?: readonly string[];
  /** Ask for per-host verdicts and scores in the result. */
  readonly explain?: boolean;
}

/**
 * The server group a claim's instance joins, recorded on the claim (`GroupMemberClaim`) so that
 * a hard policy is checked where the claim is made, against every member's claim — the request's
 * own siblings, alternates claimed on reschedule and members placed by other processes (Nova's
 * late check, `_validate_instance_group_policy`, done in the claim itself).
 */
export interface ClaimGroup {
  readonly id: string;
  readonly policy: ServerGroupPolicy;
}

/** A claim made for a member of a server group. */
export interface GroupMemberClaim extends Claim {
  readonly group: ClaimGroup;
}

/** One change of a claim store, by any process: a claim was added or removed. */
export type ClaimChange =
  | { readonly kind: 'added'; readonly claim: Claim }
  | { readonly kind: 'removed'; readonly claimId: string; readonly hostId: string };

/**
 * A claim store that several processes may share and that tells what changed (a change feed),
 * so that a scheduler learns other processes' claims and releases incrementally instead of
 * reloading every claim. Cursors are opaque strings; each covers every change committed before it.
 */
export interface ClaimChangeFeed {
  /** Whether other processes may write the store (only then need a scheduler read the feed). */
  readonly shared: boolean;
  /** Every claim, and the cursor after which {@link ClaimChangeFeed.claimChanges} continues. */
  claimSnapshot(): Promise<{ readonly claims: readonly Claim[]; readonly cursor: string }>;
  /**
   * Changes committed since `cursor`, oldest first (each claim's `added` before its `removed`),
   * and the cursor to read from next; `undefined` when the changes after `cursor` were pruned
   * (take a snapshot instead). A change may be delivered again after a snapshot: apply them
   * idempotently.
   */
  claimChanges(
    cursor: string,
  ): Promise<{ readonly changes: readonly ClaimChange[]; readonly cursor: string } | undefined>;
}

/** One placed instance: its claim on the chosen host and ordered alternates for rescheduling. */
export interface Selection {
  readonly instanceId: string;
  readonly hostId: string;
  readonly claim: Claim;
  /** Other hosts that passed the filters, best first, for rescheduling after a spawn failure. */
  readonly alternateHostIds: readonly string[];
  /**
   * The chosen host's availability zone as the scheduler saw it; the engine records it on the
   * instance (as Nova's conductor does) and reads the host store only when it is absent.
   */
  readonly availabilityZone?: string;
}

/**
 * Places instances on hosts and owns their resource claims. Implementations must never
 * double-book: concurrent `select`/`claim` calls see each other's claims.
 */
export interface Scheduler {
  /**
   * Places every instance of the request and claims its resources, or none of them.
   * @throws NoValidHostError naming how many hosts each filter rejected and why.
   */
  select(request: PlacementRequest): Promise<Selection[]>;
  /**
   * Claims resources for one instance on a specific host (an alternate) if it still fits and
   * passes the filters; resolves `undefined` otherwise. A hard group policy is checked here
   * against the group's full membership as it stands now (the request's own siblings and members
   * placed since `request.group` was resolved included), not only `request.group.memberHostIds`.
   */
  claim(hostId: string, request: PlacementRequest): Promise<Claim | undefined>;
  /** Releases a claim. Idempotent: releasing an unknown or released claim does nothing. */
  release(claim: Claim): Promise<void>;
  /** A host appeared or changed (inventory, traits, enabled, up). */
  upsertHost(host: Host): void;
  /** A host went away; its claims are forgotten. */
  removeHost(hostId: string): void;
  /** Reloads claims from the claim store (after a restart). */
  restore?(claims: readonly Claim[]): void;
  /** A build failed on a host (scorers may weigh the host down for a while). */
  recordBuildFailure?(hostId: string): void;
  /** A build holding this claim ended (active or failed): it no longer counts as in flight. */
  buildFinished?(claim: Claim): void;
}
