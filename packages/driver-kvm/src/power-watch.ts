import type { PowerState, PowerStateEvent } from '@nova-lfs/core';
import { DomainEventType, type DomainLifecycleEvent } from '@nova-lfs/libvirt';
import { type Observable, Subject } from 'rxjs';
import { powerStateOfEvent } from './power-state.js';

/**
 * The power states a KVM driver last saw for its own instances, and the stream of changes it did
 * not cause (`events$`). Changes come from libvirt's lifecycle events ({@link PowerWatch.onLifecycle})
 * and from the safety-net poll ({@link PowerWatch.observe}); while the driver itself acts on an
 * instance ({@link PowerWatch.during}) its events are not reported, the action sets the outcome.
 * Lifecycle events of every domain of the libvirtd arrive here; only instances this watch knows
 * (spawned or listed by this driver's host) are reported, so hosts sharing a libvirtd stay apart.
 */
export class PowerWatch {
  private readonly lastSeen = new Map<string, PowerState>();
  private readonly acting = new Map<string, number>();
  private readonly subject = new Subject<PowerStateEvent>();
  private readonly raw = new Subject<DomainLifecycleEvent>();
  /** Changes not caused by the driver's own calls. */
  readonly events$: Observable<PowerStateEvent> = this.subject.asObservable();
  /** Every lifecycle event received, for the driver's own waits (e.g. for a guest to stop). */
  readonly lifecycle$: Observable<DomainLifecycleEvent> = this.raw.asObservable();

  /**
   * @param resolve Looks up what the watch does not know: whether a domain is one of this host's
   *   instances (`undefined` if not), with its current power state (`nostate` once it is gone).
   */
  constructor(private readonly resolve: (instanceId: string) => Promise<PowerState | undefined>) {}

  /** Whether the instance is one of this host's. */
  knows(instanceId: string): boolean {
    return this.lastSeen.has(instanceId);
  }

  /** Records the state the driver's own call left the instance in (not reported). */
  set(instanceId: string, state: PowerState): void {
    this.lastSeen.set(instanceId, state);
  }

  /** Forgets an instance that this host no longer has (destroyed, failed spawn). */
  forget(instanceId: string): void {
    this.lastSeen.delete(instanceId);
  }

  /** Runs the driver's own action on the instance; events meanwhile are its own and not reported. */
  async during<T>(instanceId: string, fn: () => Promise<T>): Promise<T> {
    this.acting.set(instanceId, (this.acting.get(instanceId) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      const n = (this.acting.get(instanceId) ?? 1) - 1;
      if (n > 0) this.acting.set(instanceId, n);
      else this.acting.delete(instanceId);
    }
  }

  /**
   * A state read by the poll: reported if it differs from the last one seen (the first sighting of
   * an instance only records it) and no action of the driver runs on it.
   */
  observe(instanceId: string, state: PowerState, at = Date.now()): void {
    const before = this.lastSeen.get(instanceId);
    if (this.acting.has(instanceId)) return;
    this.lastSeen.set(instanceId, state);
    if (before !== undefined && before !== state) this.subject.next({ instanceId, powerState: state, at });
  }

  /**
   * A libvirt lifecycle event of any domain on the connection, attributed by its UUID (the
   * instance id) and name (`nova-<uuid>`). Events that settle a state are reported at once;
   * `undefined`, and events of a `nova-` domain this watch does not know yet, are resolved by a
   * lookup first.
   */
  onLifecycle(e: DomainLifecycleEvent): void {
    this.raw.next(e);
    const id = e.domainUuid;
    if (e.domainName !== `nova-${id}` || this.acting.has(id)) return;
    const state = powerStateOfEvent(e.event, e.detail);
    if (state !== undefined && this.knows(id)) {
      this.report(id, state, e.receivedAt);
      return;
    }
    if (e.event !== DomainEventType.Undefined && state === undefined) return;
    void this.resolve(id).then(
      (found) => {
        if (found === undefined || this.acting.has(id)) return;
        if (found === 'nostate') {
          if (this.knows(id)) this.report(id, 'nostate', e.receivedAt);
          this.forget(id);
          return;
        }
        this.report(id, found, e.receivedAt);
      },
      () => undefined, // the safety-net poll will see it
    );
  }

  /** Ends the stream. */
  close(): void {
    this.subject.complete();
    this.raw.complete();
  }

  private report(instanceId: string, state: PowerState, at: number): void {
    if (this.lastSeen.get(instanceId) === state) return;
    this.lastSeen.set(instanceId, state);
    this.subject.next({ instanceId, powerState: state, at });
  }
}
