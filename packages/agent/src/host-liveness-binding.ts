import {
  type BusLogger,
  consoleBusLogger,
  type HostLivenessChange,
  type HostLivenessState,
} from '@nova-lfs/bus-nats';
import type { ComputeEngine } from '@nova-lfs/core';
import type { Observable, Subscription } from 'rxjs';
import type { RemoteDriver } from './remote-driver.js';

/** What {@link bindHostLiveness} needs of a `HostLiveness`. */
export interface LivenessSource {
  readonly changes$: Observable<HostLivenessChange>;
  hosts(): HostLivenessState[];
}

/** Options of {@link bindHostLiveness}. */
export interface HostLivenessBindingOptions {
  /**
   * Remote drivers by host id: when a host goes down, the calls waiting for its agent fail at
   * once (retryable) instead of at their deadlines.
   */
  readonly drivers?: ReadonlyMap<string, RemoteDriver>;
  /** Reconcile the engine when a host comes back up (default true): its guests are synced. */
  readonly reconcileOnUp?: boolean;
  /** Where failed status changes are reported (default: JSON lines on stderr). */
  readonly logger?: BusLogger;
}

/**
 * A running binding: `stop()` unsubscribes; `settled()` resolves once the changes seen so far are
 * applied and the reconciliations they asked for have run.
 */
export interface HostLivenessBinding {
  stop(): void;
  settled(): Promise<void>;
}

/**
 * Wires the bus's host liveness to the engine: a host whose agent stops heartbeating is marked
 * down (`engine.hosts.setStatus(id, { up: false })`, so the scheduler skips it at once), and up
 * again when its agent beats again, after which the engine reconciles (power states, tasks left
 * by the outage; reconciliations run beside the status changes, so a host going down is marked
 * at once even while one runs). Only hosts the engine has are touched; hosts of embedded drivers never appear
 * in the hosts bucket and are left alone. Changes are applied in order, one at a time. Hosts
 * already known to `liveness` when this is called are applied first.
 */
export function bindHostLiveness(
  engine: Pick<ComputeEngine, 'hosts' | 'reconcile'>,
  liveness: LivenessSource,
  options: HostLivenessBindingOptions = {},
): HostLivenessBinding {
  const logger = options.logger ?? consoleBusLogger;
  const reconcileOnUp = options.reconcileOnUp ?? true;
  let chain: Promise<void> = Promise.resolve();
  let stopped = false;
  // Reconciliations run beside the status chain, never in it: a host going down is marked at once,
  // not after a reconciliation still waiting on slow or dead hosts. Requests while one runs are
  // coalesced into one more run.
  let reconciling: Promise<void> = Promise.resolve();
  let running = false;
  let again = false;
  const requestReconcile = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    reconciling = (async () => {
      do {
        again = false;
        if (stopped) break;
        try {
          await engine.reconcile('periodic');
        } catch (e) {
          logger.warn('reconciliation after a host came up failed', { error: String(e) });
        }
      } while (again);
      running = false;
    })();
  };

  const apply = (hostId: string, up: boolean): void => {
    const driver = options.drivers?.get(hostId);
    if (up) driver?.hostUp();
    else driver?.hostDown();
    chain = chain.then(async () => {
      if (stopped) return;
      try {
        const host = await engine.hosts.get(hostId);
        if (!host) return;
        if (host.up !== up) await engine.hosts.setStatus(hostId, { up });
        if (up && reconcileOnUp) requestReconcile();
      } catch (e) {
        logger.warn('host liveness not applied', { hostId, up, error: String(e) });
      }
    });
  };

  for (const h of liveness.hosts()) apply(h.hostId, h.up);
  const sub: Subscription = liveness.changes$.subscribe((c) => apply(c.hostId, c.up));
  return {
    stop() {
      stopped = true;
      sub.unsubscribe();
    },
    settled: async () => {
      await chain;
      await reconciling;
    },
  };
}
