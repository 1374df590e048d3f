import type {
  Connection,
  DeviceEventListener,
  Domain,
  DomainDeviceEvent,
  EventSubscription,
} from '@nova-lfs/libvirt';

/** Where device events come from: a {@link Connection} (for a domain `D`). */
export interface DeviceEventSource<D> {
  subscribeDeviceEvents(listener: DeviceEventListener, options: { domain?: D }): Promise<EventSubscription>;
}

/** How often the live definition is read again while waiting for the event (a safety net). */
const RECHECK_MS = 1_000;

/** Why a wait for a device's release ended without it. */
export type ReleaseFailure = 'refused' | 'timeout';

/**
 * Waits for a running guest to release a device after a live detach, from libvirt's events
 * (`VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED` for the device's alias, or `_DEVICE_REMOVAL_FAILED`
 * when the guest refuses), not by polling. Watch before the detach (so the event cannot be
 * missed), then {@link DeviceRelease.until}. The live definition is read at the start (libvirt's
 * detach often waits for the guest itself) and every second as a safety net, e.g. for a device
 * without an alias or an event lost while libvirtd restarted.
 */
export class DeviceRelease {
  private readonly events: DomainDeviceEvent[] = [];
  private wake: (() => void) | undefined;

  private constructor(
    private readonly subscription: EventSubscription,
    private readonly domain: Pick<Domain, 'xml'>,
    private readonly alias: string | undefined,
    private readonly recheckMs: number,
  ) {}

  /**
   * Starts watching `domain`'s device events for the device with `alias`.
   * @param recheckMs how often the live definition is read again meanwhile (default 1 s)
   */
  static async watch<D extends Pick<Domain, 'xml'>>(
    conn: DeviceEventSource<D>,
    domain: D,
    alias: string | undefined,
    recheckMs = RECHECK_MS,
  ): Promise<DeviceRelease> {
    let release: DeviceRelease | undefined;
    const early: DomainDeviceEvent[] = [];
    const subscription = await conn.subscribeDeviceEvents(
      (e) => {
        if (release) release.seen(e);
        else early.push(e);
      },
      { domain },
    );
    release = new DeviceRelease(subscription, domain, alias, recheckMs);
    for (const e of early) release.seen(e);
    return release;
  }

  /**
   * Resolves once `present(liveXml)` is false; rejects with a {@link ReleaseFailure} reason when
   * the guest refuses (the removal-failed event for the alias) or `timeoutMs` pass. Closes the
   * subscription either way.
   */
  async until(present: (liveXml: string) => boolean, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    try {
      for (;;) {
        const refused = this.events.splice(0).some((e) => e.kind === 'removal-failed');
        if (!present(await this.domain.xml())) return;
        if (refused) throw new DeviceReleaseError('refused');
        const left = end - Date.now();
        if (left <= 0) throw new DeviceReleaseError('timeout');
        // an event that came while the definition was read is looked at at once
        if (this.events.length > 0) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(this.recheckMs, left));
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    } finally {
      await this.close();
    }
  }

  /** Stops watching (when the detach itself failed). Idempotent. */
  close(): Promise<void> {
    return this.subscription.close().catch(() => undefined);
  }

  private seen(e: DomainDeviceEvent): void {
    // an event without the alias we know (or for a device whose alias we do not know) may be ours
    if (this.alias !== undefined && e.alias !== this.alias) return;
    this.events.push(e);
    this.wake?.();
  }
}

/** The guest did not release the device: it refused, or not in time. */
export class DeviceReleaseError extends Error {
  constructor(readonly reason: ReleaseFailure) {
    super(reason === 'refused' ? 'the guest refused to release it' : 'the guest did not release it in time');
  }
}
