import { domainIdentityOf, EventRoutes } from './event-routes.js';
import type { LibvirtNative, Pointer } from './native.js';

/**
 * A device left a running domain (`VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED`: the guest released it
 * and libvirt removed it from the live definition), or the guest refused to let it go
 * (`VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED`).
 */
export interface DomainDeviceEvent {
  /** Name of the domain. */
  readonly domainName: string;
  /** UUID of the domain. */
  readonly domainUuid: string;
  readonly kind: 'removed' | 'removal-failed';
  /** The device's alias in the live definition (`<alias name='...'/>`, e.g. `virtio-disk1`, `net1`). */
  readonly alias: string;
  /** When the binding received it (`Date.now()`). */
  readonly receivedAt: number;
}

/** Receives device events; runs on the main thread after libvirt's event thread has moved on. */
export type DeviceEventListener = (event: DomainDeviceEvent) => void;

/** Event id of `VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED`. */
export const EVENT_ID_DEVICE_REMOVED = 15;
/** Event id of `VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED`. */
export const EVENT_ID_DEVICE_REMOVAL_FAILED = 22;

/**
 * The process's two koffi callbacks for device events (one per event id: libvirt's callback does
 * not say which event it reports), routed as lifecycle events are (see `LifecycleDispatcher`).
 * Both stay registered for the process's life.
 */
export class DeviceEventDispatcher extends EventRoutes<DeviceEventListener> {
  readonly removed: bigint;
  readonly removalFailed: bigint;

  constructor(native: LibvirtNative) {
    super();
    const callback = (kind: DomainDeviceEvent['kind']) =>
      native.koffi.register((_conn: unknown, dom: Pointer, alias: string | null, opaque: unknown): void => {
        try {
          const listener = this.listenerOf(opaque);
          if (!listener) return;
          const e: DomainDeviceEvent = {
            ...domainIdentityOf(native, dom),
            kind,
            alias: alias ?? '',
            receivedAt: Date.now(),
          };
          queueMicrotask(() => listener(e));
        } catch {
          // never throw into libvirt
        }
      }, native.koffi.pointer(native.types.deviceCallback));
    this.removed = callback('removed');
    this.removalFailed = callback('removal-failed');
  }
}
