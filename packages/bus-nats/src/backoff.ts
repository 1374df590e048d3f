/** Exponential reconnect backoff with jitter. All times in ms. */
export interface BusBackoff {
  /** Wait before the first reconnect round (default 250). */
  readonly initialDelayMs: number;
  /** Longest wait between rounds (default 10,000). */
  readonly maxDelayMs: number;
  /** Growth per round (default 2). */
  readonly factor: number;
  /** Random spread, a fraction of the delay added or removed (default 0.2). */
  readonly jitter: number;
}

/** The defaults of {@link BusBackoff}. */
export const defaultBusBackoff: BusBackoff = Object.freeze({
  initialDelayMs: 250,
  maxDelayMs: 10_000,
  factor: 2,
  jitter: 0.2,
});

/** The wait before reconnect round `attempt` (0-based): `initial × factor^attempt`, capped, ± jitter. */
export function backoffDelay(
  attempt: number,
  backoff: BusBackoff = defaultBusBackoff,
  random = Math.random,
): number {
  const raw = Math.min(backoff.maxDelayMs, backoff.initialDelayMs * backoff.factor ** Math.max(0, attempt));
  const spread = raw * backoff.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(raw + spread));
}
