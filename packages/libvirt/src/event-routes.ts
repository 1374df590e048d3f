import type { LibvirtNative, Pointer } from './native.js';

/**
 * Routes events of one koffi callback to their listeners: libvirt passes each registration's
 * number back as `opaque`, and the number names the listener. Numbers are never reused.
 */
export class EventRoutes<L> {
  private nextId = 1;
  private readonly listeners = new Map<number, L>();

  /** Adds a listener; returns the number to pass as libvirt's `opaque`. */
  add(listener: L): number {
    const id = this.nextId++;
    this.listeners.set(id, listener);
    return id;
  }

  /** Removes a listener (events already queued for it are dropped). */
  remove(id: number): void {
    this.listeners.delete(id);
  }

  /** The listener of an event's `opaque`, if it is still registered. */
  listenerOf(opaque: unknown): L | undefined {
    return this.listeners.get(Number(opaque ?? 0));
  }
}

/**
 * The name and UUID of an event's domain. The domain pointer is valid only while libvirt's
 * callback runs, so an event reads them at once (both are local reads of the handle).
 */
export function domainIdentityOf(
  native: LibvirtNative,
  dom: Pointer,
): { domainName: string; domainUuid: string } {
  const domainName = native.callSync<string>('virDomainGetName', dom);
  const buf = Buffer.alloc(37);
  native.callSync('virDomainGetUUIDString', dom, buf);
  return { domainName, domainUuid: buf.toString('latin1', 0, 36) };
}
