/** Deadlines of driver calls, in ms (Nova's `instance_build_timeout` and friends). */
export interface DriverTimeouts {
  /** A spawn (image preparation included). Default 600,000 (10 min). */
  readonly spawn: number;
  /** A destroy. Default 120,000. */
  readonly destroy: number;
  /** Power off (its graceful part is `powerOffTimeoutMs`), power on, a volume attach or detach. Default 180,000. */
  readonly power: number;
  /** Soft or hard reboot. Default 180,000. */
  readonly reboot: number;
  /** Pause, unpause, suspend, resume. Default 300,000. */
  readonly pause: number;
  /** A rebuild. Default 600,000. */
  readonly rebuild: number;
  /** A snapshot. Default 1,800,000. */
  readonly snapshot: number;
  /** Reads (power state, guest lists, console output, host reports). Default 30,000. */
  readonly read: number;
  /**
   * One step of a cold migration or resize (prepare, hand the disks over, finish, confirm, revert),
   * a shelve offload or unshelve, a rescue. Default 1,800,000.
   */
  readonly move: number;
}

/** Tuning of the lifecycle engine. */
export interface EngineOptions {
  /** Hosts tried per instance build, the first included (Nova's `max_attempts`). Default 3. */
  readonly maxBuildAttempts: number;
  /** Graceful power-off timeout given to drivers, in ms. Default 60,000. */
  readonly powerOffTimeoutMs: number;
  /** Destroy guests found on hosts but unknown to the store during reconciliation. Default false (report only). */
  readonly reapOrphans: boolean;
  /** Deadline of each kind of driver call. */
  readonly timeouts: DriverTimeouts;
  /**
   * Interval of the periodic reconciler in ms (power-state sync, tasks past their deadline, stale
   * reservations, claims without an instance, orphans). `createCompute` turns it on (default
   * 60,000); 0 turns it off.
   */
  readonly reconcileIntervalMs: number;
  /** How long a host lease lasts unless renewed, in ms. Default 30,000 (renewed every third of it). */
  readonly hostLeaseTtlMs: number;
  /**
   * A task another process runs is taken for dead, and healed, once it has not changed for its
   * driver call's deadline plus this grace, in ms. Default 60,000.
   */
  readonly staleTaskGraceMs: number;
  /**
   * Events the durable log keeps (the newest); older ones are pruned by the reconciler. Default
   * 100,000. The memory event log (memory storage) holds at most its own capacity, 10,000.
   */
  readonly eventRetention: number;
  /**
   * A resize may land on the instance's own host when no other host fits (Nova's
   * `allow_resize_to_same_host`; both claims are held there until the confirm). Default false.
   */
  readonly allowResizeToSameHost: boolean;
  /**
   * A resized instance is confirmed by the reconciler this long after its resize finished, in ms
   * (Nova's `resize_confirm_window`); 0 turns automatic confirms off. Default 0.
   */
  readonly resizeConfirmWindowMs: number;
  /**
   * A shelved instance is offloaded (guest destroyed, claim released) this long after its shelve,
   * in ms (Nova's `shelved_offload_time`): 0 offloads at once, -1 never. Default 0.
   */
  readonly shelvedOffloadTimeMs: number;
  /**
   * A live migration still running this long after it began is finished by itself: switched to
   * post-copy where the driver allows, else its downtime raised (Nova's
   * `live_migration_completion_timeout` with `live_migration_timeout_action = force_complete`),
   * in ms. 0 turns the policy off. Default 600,000.
   */
  readonly liveMigrationCompletionTimeoutMs: number;
  /** The downtime allowed when the completion policy raises it (ms). Default 2,000. */
  readonly liveMigrationForcedDowntimeMs: number;
}

/** Defaults of {@link EngineOptions}. */
export const defaultEngineOptions: EngineOptions = Object.freeze({
  maxBuildAttempts: 3,
  powerOffTimeoutMs: 60_000,
  reapOrphans: false,
  timeouts: Object.freeze({
    spawn: 600_000,
    destroy: 120_000,
    power: 180_000,
    reboot: 180_000,
    pause: 300_000,
    rebuild: 600_000,
    snapshot: 1_800_000,
    read: 30_000,
    move: 1_800_000,
  }),
  reconcileIntervalMs: 0,
  hostLeaseTtlMs: 30_000,
  staleTaskGraceMs: 60_000,
  eventRetention: 100_000,
  allowResizeToSameHost: false,
  resizeConfirmWindowMs: 0,
  shelvedOffloadTimeMs: 0,
  liveMigrationCompletionTimeoutMs: 600_000,
  liveMigrationForcedDowntimeMs: 2_000,
});
