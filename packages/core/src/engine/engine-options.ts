/** Tuning of the lifecycle engine. */
export interface EngineOptions {
  /** Hosts tried per instance build, the first included (Nova's `max_attempts`). Default 3. */
  readonly maxBuildAttempts: number;
  /** Graceful power-off timeout given to drivers, in ms. Default 60,000. */
  readonly powerOffTimeoutMs: number;
  /** Destroy guests found on hosts but unknown to the store during reconciliation. Default false (report only). */
  readonly reapOrphans: boolean;
}

/** Defaults of {@link EngineOptions}. */
export const defaultEngineOptions: EngineOptions = Object.freeze({
  maxBuildAttempts: 3,
  powerOffTimeoutMs: 60_000,
  reapOrphans: false,
});
