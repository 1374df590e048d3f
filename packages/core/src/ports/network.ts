import type { Instance } from '../model/instance.js';

/** A port bound to an instance by the NetworkAdapter. */
export interface PortBinding {
  readonly portId: string;
  readonly networkId: string;
  readonly macAddress?: string;
  readonly ipAddresses?: readonly string[];
  /** Adapter-specific binding details for the driver (bridge name, netns path, ...). */
  readonly binding?: Readonly<Record<string, string>>;
}

/** What a create request asked for. */
export interface NetworkRequest {
  readonly networkId?: string;
  readonly portId?: string;
}

/**
 * Allocates and releases ports without the core knowing the network backend. The engine calls
 * `allocate` before spawn and for an interface attach, `deallocate` on failure, detach and delete;
 * both must be idempotent.
 */
export interface NetworkAdapter {
  /** Binds one port per request to `instance`, in order (a new port on `networkId`, or the existing `portId`). */
  allocate(instance: Instance, requests: readonly NetworkRequest[]): Promise<PortBinding[]>;
  /**
   * Releases the ports `portIds` of `instance` (an interface detach), or every port bound to it when
   * `portIds` is omitted (a delete, a failed build). Ports the adapter made for a network go; ports
   * the caller made are unbound and kept, as Neutron does for Nova.
   */
  deallocate(instance: Instance, portIds?: readonly string[]): Promise<void>;
}
