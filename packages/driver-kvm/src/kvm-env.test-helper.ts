import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { type Image, LocalImageService } from '@nova-lfs/core';
import {
  findGuestKernel,
  importGuestImages,
  libvirtAvailable,
  startLibvirtCommand,
} from './testing/index.js';

/** libvirtd and the guest kernel, decided once per test file. With CI=true their absence is an error. */
export const kernel = await findGuestKernel();
export const available = (await libvirtAvailable()) && kernel !== undefined;
if (!available) {
  const reason = kernel
    ? `libvirtd does not answer on qemu:///system; start it with: ${startLibvirtCommand}`
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
