import type { BusLogger, HostLivenessChange } from '@nova-lfs/bus-nats';
import type { ComputeEngine, EvacuateReport } from '@nova-lfs/core';

/** The liveness changes the policy follows (`HostLiveness.changes$`). */
export interface LivenessChanges {
  subscribe(next: (change: HostLivenessChange) => void): { unsubscribe(): void };
}

/** Options of {@link startEvacuatePolicy}. */
export interface EvacuatePolicyOptions {
  /** A host down (its heartbeats stopped) this long is evacuated, in ms. */
  readonly afterMs: number;
  /** Where evacuations and their failures are reported. */
  readonly logger: BusLogger;
  /** Called with each evacuation's report (tests, metrics). */
  readonly onEvacuated?: (report: EvacuateReport) => void;
}

/** A running policy: `stop()` cancels the pending evacuations and unsubscribes. */
export interface EvacuatePolicy {
  stop(): void;
  /** Hosts whose evacuation is scheduled (down, not yet evacuated). */
  readonly pending: ReadonlySet<string>;
}

/**
 * The automatic evacuate policy of `serve --evacuate-after-ms MS` (off by default): when a host's
 * liveness goes down and stays down for `afterMs`, its instances are rebuilt elsewhere with
 * `compute.evacuate(hostId)` (Nova's evacuate); a host that comes back up before is left alone.
 * The engine makes each instance's evacuation one task (its `rebuilding` state is taken in one
 * unit of work), so two control planes running the policy on the same host do not rebuild an
 * instance twice; the copies an evacuated host still runs are destroyed when its agent returns.
 */
export function startEvacuatePolicy(
  engine: Pick<ComputeEngine, 'evacuate'>,
  changes$: LivenessChanges,
  options: EvacuatePolicyOptions,
): EvacuatePolicy {
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  let stopped = false;
  const evacuate = async (hostId: string): Promise<void> => {
    timers.delete(hostId);
    if (stopped) return;
    try {
      const report = await engine.evacuate(hostId);
      options.logger.warn('host evacuated', {
        hostId,
        downForMs: options.afterMs,
        instances: report.instances.length,
      });
      options.onEvacuated?.(report);
    } catch (e) {
      options.logger.warn('host evacuation failed', { hostId, error: String(e) });
    }
  };
  const sub = changes$.subscribe((c) => {
    const timer = timers.get(c.hostId);
    if (c.up) {
      if (timer) clearTimeout(timer);
      timers.delete(c.hostId);
    } else if (!timer) {
      timers.set(
        c.hostId,
        setTimeout(() => void evacuate(c.hostId), options.afterMs),
      );
    }
  });
  return {
    stop() {
      stopped = true;
      sub.unsubscribe();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
    get pending() {
      return new Set(timers.keys());
    },
  };
}
