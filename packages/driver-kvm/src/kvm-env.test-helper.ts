import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { type Image, LocalImageService } from '@nova-lfs/core';
import { findGuestKernel, importGuestImages, probeLibvirt } from './testing/index.js';

/**
 * libvirtd (through the binding) and the guest kernel, decided once per test file. With CI=true
 * their absence is an error; the reason says whether the binding did not load (with its load
 * error) or libvirtd did not answer.
 */
export const kernel = await findGuestKernel();
const probe = await probeLibvirt();
export const available = probe.available && kernel !== undefined;
if (!available) {
  const reason = !probe.available
    ? probe.reason
    : 'no /boot/vmlinuz-*-cloud-amd64; install it with: apt-get install linux-image-cloud-amd64';
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping KVM driver tests: ${reason}`);
}

/** Root of the files these tests create (under /var/lib so QEMU can read them). */
export function testRoot(): string {
  mkdirSync('/var/lib/nova-lfs/test', { recursive: true, mode: 0o755 });
  return mkdtempSync('/var/lib/nova-lfs/test/kvm-');
}

/** The guest images (kernel, initrd, `guest` disk image, `initrd-boot`) in a fresh image service under `root`. */
export async function guestImages(
  root: string,
): Promise<{ images: LocalImageService; guest: Image; initrdOnly: Image }> {
  const images = new LocalImageService(join(root, 'images'));
  return { images, ...(await importGuestImages(images, root, kernel!)) };
}
