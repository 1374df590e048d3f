import { domainEventTypeNames } from './constants.js';
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
export class LifecycleDispatcher {
  readonly callback: bigint;
  private nextId = 1;
  private readonly listeners = new Map<number, LifecycleListener>();

  constructor(native: LibvirtNative) {
    const k = native.koffi;
    this.callback = k.register(
      (_conn: unknown, dom: Pointer, event: number, detail: number, opaque: unknown): number => {
        try {
          const listener = this.listeners.get(Number(opaque ?? 0));
          if (!listener) return 0;
          // The domain pointer is valid only during the callback: read what the event needs now.
          const domainName = native.callSync<string>('virDomainGetName', dom);
          const buf = Buffer.alloc(37);
          native.callSync('virDomainGetUUIDString', dom, buf);
          const e: DomainLifecycleEvent = {
            domainName,
            domainUuid: buf.toString('latin1', 0, 36),
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

  /** Adds a listener; returns the number to pass as libvirt's `opaque`. */
  add(listener: LifecycleListener): number {
    const id = this.nextId++;
    this.listeners.set(id, listener);
    return id;
  }

  /** Removes a listener (events already queued for it are dropped). */
  remove(id: number): void {
    this.listeners.delete(id);
  }
}
