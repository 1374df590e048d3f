import { Observable, Subject } from 'rxjs';
import type { LoggedEvent } from '../ports/unit-of-work.js';
import type { InstanceEvent } from './events.js';

/**
 * Per-instance event streams: one subscription to the engine's events dispatches each event to
 * the watchers of its instance through a map lookup, so the cost of an event does not grow with
 * the number of open watches. An instance's entry is dropped when its last watcher leaves.
 */
export class WatchHub {
  private readonly byInstance = new Map<string, { subject: Subject<InstanceEvent>; watchers: number }>();

  constructor(source: Observable<LoggedEvent>) {
    source.subscribe({
      next: (l) => this.byInstance.get(l.event.instanceId)?.subject.next(l.event),
      complete: () => {
        for (const w of this.byInstance.values()) w.subject.complete();
        this.byInstance.clear();
      },
    });
  }

  /** Events of one instance from now on (completes only when the engine closes). */
  watch(instanceId: string): Observable<InstanceEvent> {
    return new Observable<InstanceEvent>((subscriber) => {
      let entry = this.byInstance.get(instanceId);
      if (!entry) {
        entry = { subject: new Subject<InstanceEvent>(), watchers: 0 };
        this.byInstance.set(instanceId, entry);
      }
      entry.watchers++;
      const sub = entry.subject.subscribe(subscriber);
      return () => {
        sub.unsubscribe();
        const e = this.byInstance.get(instanceId);
        if (e && --e.watchers === 0) this.byInstance.delete(instanceId);
      };
    });
  }

  /** Instances with open watches (for tests of unbounded growth). */
  get size(): number {
    return this.byInstance.size;
  }
}
