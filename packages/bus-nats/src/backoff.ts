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

/**
 * The reconnect delays of one connection, as the NATS client asks for them. The client calls its
 * `reconnectDelayHandler` on every turn of its dial loop, also on the turns where it only waits
 * for the delay to pass, and dials once the last dial is older than the value returned: a handler
 * that advanced the backoff on every call outran itself (each wait doubled the next one) and the
 * first dial after a failed one came only at the cap (10 s by default). This hands out the same
 * delay until it has passed, then the next one of the backoff, from the first again after `reset()`.
 */
export class ReconnectDelays {
  private attempt = 0;
  private current: number | undefined;
  private issuedAt = 0;

  constructor(
    private readonly backoff: BusBackoff = defaultBusBackoff,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay the client should wait now before its next dial, in ms. */
  next(): number {
    const now = this.now();
    if (this.current === undefined || now >= this.issuedAt + this.current) {
      this.current = backoffDelay(this.attempt++, this.backoff, this.random);
      this.issuedAt = now;
    }
    return this.current;
  }

  /** Reconnected: the next outage starts from the first delay again. */
  reset(): void {
    this.attempt = 0;
    this.current = undefined;
  }
}
