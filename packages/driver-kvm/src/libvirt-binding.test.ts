import { describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';

describe('libvirt binding loading', () => {
  it('gives a typed error naming the module when the binding is missing', async () => {
    const driver = new KvmDriver({
      loader: async () => {
        throw new Error("Cannot find module '@unraid/libvirt'");
      },
    });
    const err = await driver.getHostReport().catch((e) => e);
    expect(err.code).toBe('NLFS_KVM_BINDING_UNAVAILABLE');
    expect(err.details).toEqual({ module: '@unraid/libvirt' });
    expect(err.cause.message).toMatch(/Cannot find module/);
  });

  it('gives a typed error naming the URI when libvirtd cannot be reached', async () => {
    const driver = new KvmDriver({ uri: 'qemu+unix:///system?socket=/nonexistent/libvirt-sock' });
    const err = await driver.getHostReport().catch((e) => e);
    expect(err.code).toBe('NLFS_KVM_UNREACHABLE');
    expect(err.details.uri).toContain('/nonexistent/libvirt-sock');
  });
});
