import { domainEventTypeNames } from './constants.js';
import { domainIdentityOf, EventRoutes } from './event-routes.js';
import type { LibvirtNative, Pointer } from './native.js';

/** A domain lifecycle event (`VIR_DOMAIN_EVENT_ID_LIFECYCLE`). */
export interface DomainLifecycleEvent {
  /** Name of the domain. */
  readonly domainName: string;
  /** UUID of the domain. */
  readonly domainUuid: string;
  /** {@link DomainEventType} value. */
  readonly event: number;
  /** Its name: `defined`, `undefined`, `started`, `suspended`, `resumed`, `stopped`, `shutdown`, `pmsuspended`, `crashed`. */
  readonly eventName: string;
  /** The event's detail (e.g. {@link DomainEventStoppedDetail} for `stopped`). */
  readonly detail: number;
  /** When the binding received it (`Date.now()`). */
  readonly receivedAt: number;
}

/** Receives lifecycle events; runs on the main thread after libvirt's event thread has moved on. */
export type LifecycleListener = (event: DomainLifecycleEvent) => void;

/** Event id of lifecycle events (`VIR_DOMAIN_EVENT_ID_LIFECYCLE`). */
export const EVENT_ID_LIFECYCLE = 0;

/**
 * The process's one koffi callback for lifecycle events. libvirt calls it on its event-loop
 * thread; koffi relays the call to the main thread while that thread waits. `opaque` carries the
 * registration's number, which routes the event to its listener. The callback stays registered
 * for the process's life, so libvirt never holds a dangling pointer.
 */
export class LifecycleDispatcher extends EventRoutes<LifecycleListener> {
  readonly callback: bigint;

  constructor(native: LibvirtNative) {
    super();
    const k = native.koffi;
    this.callback = k.register(
      (_conn: unknown, dom: Pointer, event: number, detail: number, opaque: unknown): number => {
        try {
          const listener = this.listenerOf(opaque);
          if (!listener) return 0;
          const e: DomainLifecycleEvent = {
            ...domainIdentityOf(native, dom),
            event,
            eventName: domainEventTypeNames[event] ?? `event ${event}`,
            detail,
            receivedAt: Date.now(),
          };
          // Run the listener after this callback returns, so libvirt's event thread is not held.
          queueMicrotask(() => listener(e));
        } catch {
          // never throw into libvirt
        }
        return 0;
      },
      k.pointer(native.types.lifecycleCallback),
    );
  }
}
