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
 * `allocate` before spawn and `deallocate` on failure and delete; both must be idempotent.
 */
export interface NetworkAdapter {
  allocate(instance: Instance, requests: readonly NetworkRequest[]): Promise<PortBinding[]>;
  deallocate(instance: Instance): Promise<void>;
}
