import type { Instance } from '../model/instance.js';

/** A volume prepared for attachment on a host. */
export interface BlockDevice {
  readonly volumeId: string;
  /** Device name inside the guest, e.g. `vdb`. */
  readonly device?: string;
  /** Host path or connection info the driver uses to attach it. */
  readonly connection: Readonly<Record<string, string>>;
}

/** What a create request asked for. */
export interface VolumeRequest {
  readonly volumeId: string;
  readonly device?: string;
}

/**
 * Prepares volumes on a host and releases them, without the core knowing the storage backend.
 * Both calls must be idempotent.
 */
export interface VolumeAdapter {
  connect(instance: Instance, hostId: string, requests: readonly VolumeRequest[]): Promise<BlockDevice[]>;
  disconnect(instance: Instance, hostId: string): Promise<void>;
}
