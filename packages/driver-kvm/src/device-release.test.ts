import type { DeviceEventListener, DomainDeviceEvent, EventSubscription } from '@nova-lfs/libvirt';
import { describe, expect, it } from 'vitest';
import { DeviceRelease, DeviceReleaseError } from './device-release.js';

/**
 * The wait's own logic, over an in-memory domain and event source (libvirt's delivery of the
 * events, with the device's alias, is tested against the real libvirtd and QEMU in
 * `@nova-lfs/libvirt`'s qemu-system test; the driver's detaches in the KVM volume and NIC tests).
 */
function source() {
  let listener: DeviceEventListener | undefined;
  let closed = 0;
  let present = true;
  let reads = 0;
  const conn = {
    subscribeDeviceEvents: async (l: DeviceEventListener): Promise<EventSubscription> => {
      listener = l;
      return {
        close: async () => {
          closed++;
        },
      };
    },
  };
  const domain = {
    xml: async () => {
      reads++;
      return present ? '<disk/>' : '';
    },
  };
  const emit = (kind: DomainDeviceEvent['kind'], alias: string) =>
    listener!({ domainName: 'd', domainUuid: 'u', kind, alias, receivedAt: Date.now() });
  return {
    conn,
    domain,
    emit,
    release: () => {
      present = false;
    },
    get closed() {
      return closed;
    },
    get reads() {
      return reads;
    },
  };
}

const present = (xml: string) => xml.includes('<disk/>');
/** Longer than any test: only an event (or the first read) can end these waits. */
const NEVER = 600_000;

describe('DeviceRelease', () => {
  it('ends on the device-removed event of its alias, not on a re-read of the definition', async () => {
    const s = source();
    const release = await DeviceRelease.watch(s.conn, s.domain, 'virtio-disk1', NEVER);
    const done = release.until(present, NEVER);
    // another device's event does not end it
    s.emit('removed', 'virtio-disk2');
    await Promise.resolve();
    s.release();
    s.emit('removed', 'virtio-disk1');
    await done;
    expect(s.reads).toBeGreaterThanOrEqual(2);
    expect(s.closed).toBe(1);
  });

  it('resolves at once when the device is already gone (libvirt waited for the guest itself)', async () => {
    const s = source();
    s.release();
    const release = await DeviceRelease.watch(s.conn, s.domain, 'net1', NEVER);
    await release.until(present, NEVER);
    expect(s.reads).toBe(1);
    expect(s.closed).toBe(1);
  });

  it('fails as refused on the removal-failed event, and as timeout when nothing comes', async () => {
    const s = source();
    const refused = (await DeviceRelease.watch(s.conn, s.domain, 'net1', NEVER)).until(present, NEVER);
    s.emit('removal-failed', 'net1');
    const e = await refused.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DeviceReleaseError);
    expect((e as DeviceReleaseError).reason).toBe('refused');

    const t = source();
    const late = await (await DeviceRelease.watch(t.conn, t.domain, 'net1', 5))
      .until(present, 20)
      .catch((x: unknown) => x);
    expect((late as DeviceReleaseError).reason).toBe('timeout');
    expect(t.reads).toBeGreaterThanOrEqual(2);
    expect(t.closed).toBe(1);
  });

  it('keeps an event that came before the wait started, and any event when the alias is unknown', async () => {
    const s = source();
    const release = await DeviceRelease.watch(s.conn, s.domain, undefined, NEVER);
    s.release();
    s.emit('removed', 'whatever');
    await release.until(present, NEVER);
    expect(s.closed).toBe(1);
  });
});
