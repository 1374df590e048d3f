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
  /** Connects the requested volumes to `instance` on `hostId`: one device per request, in order. */
  connect(instance: Instance, hostId: string, requests: readonly VolumeRequest[]): Promise<BlockDevice[]>;
  /**
   * Disconnects the volumes `volumeIds` from `instance` (a detach), or every volume connected to it
   * when `volumeIds` is omitted (a delete, a failed build).
   */
  disconnect(instance: Instance, hostId: string, volumeIds?: readonly string[]): Promise<void>;
}
