import { ValidationError } from '@nova-lfs/core';
import { describe, expect, it } from 'vitest';
import { domainInterfaces, interfaceDeviceXml, nicOfPort } from './interface-xml.js';

const port = {
  portId: '0f3c9a2e-1111-4222-8333-444455556666',
  networkId: 'net-a',
  macAddress: 'FA:16:3E:00:00:0A',
};

describe('NIC XML from port bindings', () => {
  it("names the tap after the port (Nova's tap + 11 characters) unless the binding names one, lower-cases the MAC", () => {
    expect(nicOfPort(port)).toEqual({ mac: 'fa:16:3e:00:00:0a', tap: 'tap0f3c9a2e-11' });
    expect(nicOfPort({ ...port, binding: { vifType: 'ethernet', tap: 'nlfs0' } })).toEqual({
      mac: 'fa:16:3e:00:00:0a',
      tap: 'nlfs0',
    });
  });

  it('renders an ethernet NIC with a managed tap, and a bridge NIC on the named bridge; both read back by MAC', () => {
    const eth = interfaceDeviceXml(nicOfPort(port));
    expect(eth).toBe(
      '<interface type="ethernet"><mac address="fa:16:3e:00:00:0a"/><target dev="tap0f3c9a2e-11" managed="yes"/><model type="virtio"/></interface>',
    );
    const br = interfaceDeviceXml(nicOfPort({ ...port, binding: { vifType: 'bridge', bridge: 'br-int' } }));
    expect(br).toContain('<interface type="bridge">');
    expect(br).toContain('<source bridge="br-int"/>');
    expect(br).not.toContain('managed');
    expect(domainInterfaces(`<domain><devices>${eth}${br}</devices></domain>`)).toEqual([
      { mac: 'fa:16:3e:00:00:0a', tap: 'tap0f3c9a2e-11' },
      { mac: 'fa:16:3e:00:00:0a', tap: 'tap0f3c9a2e-11' },
    ]);
  });

  it('refuses bindings whose values would need escaping or reach a shell, naming the field', () => {
    for (const [bad, field] of [
      [{ ...port, macAddress: 'fa:16:3e:00:00:0a"/><disk' }, 'macAddress'],
      [{ ...port, macAddress: undefined }, 'macAddress'],
      [{ ...port, binding: { tap: 'a'.repeat(16) } }, 'binding.tap'],
      [{ ...port, binding: { tap: 'tap x' } }, 'binding.tap'],
      [{ ...port, binding: { tap: 'tap/../x' } }, 'binding.tap'],
      [{ ...port, binding: { vifType: 'vhostuser' } }, 'binding.vifType'],
      [{ ...port, binding: { vifType: 'bridge' } }, 'binding.bridge'],
      [{ ...port, binding: { vifType: 'bridge', bridge: '`id`' } }, 'binding.bridge'],
    ] as const) {
      const e = (() => {
        try {
          nicOfPort(bad);
        } catch (x) {
          return x;
        }
      })();
      expect(e, JSON.stringify(bad)).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).details.issues.map((i) => i.path)).toContain(field);
    }
  });
});
