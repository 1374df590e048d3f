import type { DriverInstance, PowerState, PowerStateEvent } from '@nova-lfs/core';
import { Observable, Subject } from 'rxjs';

/**
 * Power-state events by polling (LXC has `lxc-monitor`, but it needs `lxc-monitord` and reports
 * per-lxcpath socket events that are lost across restarts; a poll of one `lxc-ls` per interval is
 * simpler and cannot miss a final state). Polls only while someone subscribes to `events$`.
 *
 * The first poll after subscribing sets a baseline and emits nothing; later polls emit each
 * instance whose state changed, and `nostate` for one that vanished. States the driver itself
 * caused are told with {@link PowerPoller.noteOwn} and not emitted, and an instance the driver
 * touched while a poll ran is skipped by that poll (its reading may predate the change).
 */
export class PowerPoller {
  private readonly subject = new Subject<PowerStateEvent>();
  private readonly last = new Map<string, PowerState>();
  private readonly touched = new Map<string, number>();
  /** Own calls in progress, by instance. */
  private readonly busy = new Map<string, number>();
  private generation = 0;
  private subscribers = 0;
  private timer: NodeJS.Timeout | undefined;
  private baseline = false;
  private closed = false;
  /** Bumped by every start and stop, so a tick of an older loop does not reschedule itself. */
  private loop = 0;

  /** Power-state changes observed by polling, while subscribed (see the class doc). */
  readonly events$: Observable<PowerStateEvent> = new Observable<PowerStateEvent>((subscriber) => {
    const sub = this.subject.subscribe(subscriber);
    if (++this.subscribers === 1) this.start();
    return () => {
      sub.unsubscribe();
      if (--this.subscribers === 0) this.stop();
    };
  });

  constructor(
    private readonly list: () => Promise<DriverInstance[]>,
    private readonly intervalMs: number,
  ) {}

  /**
   * Marks the start of one of the driver's own calls on an instance: polls skip the instance
   * until the returned function is called (in a `finally`), and any poll that overlapped it.
   */
  begin(instanceId: string): () => void {
    this.busy.set(instanceId, (this.busy.get(instanceId) ?? 0) + 1);
    this.touched.set(instanceId, ++this.generation);
    return () => {
      const n = (this.busy.get(instanceId) ?? 1) - 1;
      if (n > 0) this.busy.set(instanceId, n);
      else this.busy.delete(instanceId);
      this.touched.set(instanceId, ++this.generation);
    };
  }

  /** Records a state the driver's own call caused (`nostate` once it destroyed the guest). */
  noteOwn(instanceId: string, state: PowerState): void {
    this.touched.set(instanceId, ++this.generation);
    if (state === 'nostate') this.last.delete(instanceId);
    else this.last.set(instanceId, state);
  }

  /** Polls once now (tests; also what the timer runs). */
  async pollOnce(): Promise<void> {
    const started = this.generation;
    let listed: DriverInstance[];
    try {
      listed = await this.list();
    } catch {
      return; // LXC did not answer this time: the next poll tries again
    }
    const fresh = (id: string) => !this.busy.has(id) && (this.touched.get(id) ?? 0) <= started;
    const seen = new Set<string>();
    const at = Date.now();
    for (const g of listed) {
      seen.add(g.instanceId);
      if (!fresh(g.instanceId)) continue;
      const before = this.last.get(g.instanceId);
      this.last.set(g.instanceId, g.powerState);
      if (this.baseline && before !== g.powerState)
        this.subject.next({ instanceId: g.instanceId, powerState: g.powerState, at });
    }
    for (const id of [...this.last.keys()]) {
      if (seen.has(id) || !fresh(id)) continue;
      this.last.delete(id);
      if (this.baseline) this.subject.next({ instanceId: id, powerState: 'nostate', at });
    }
    this.baseline = true;
    for (const [id, gen] of this.touched) if (gen <= started && !this.busy.has(id)) this.touched.delete(id);
  }

  private start(): void {
    if (this.closed) return;
    this.baseline = false;
    const loop = ++this.loop;
    const tick = async () => {
      await this.pollOnce();
      if (loop === this.loop && this.subscribers > 0 && !this.closed) {
        this.timer = setTimeout(tick, this.intervalMs);
        this.timer.unref();
      }
    };
    this.timer = setTimeout(tick, 0);
    this.timer.unref();
  }

  private stop(): void {
    this.loop++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Stops polling and completes `events$`. */
  close(): void {
    this.closed = true;
    this.stop();
    this.subject.complete();
  }
}
