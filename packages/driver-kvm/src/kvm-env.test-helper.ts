import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { type Image, LocalImageService } from '@nova-lfs/core';
import {
  findGuestKernel,
  libvirtAvailable,
  makeBlankQcow2,
  makeInitramfs,
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

/**
 * An image service with: `kernel` (the cloud kernel), `initrd` (busybox initramfs printing the
 * marker) and `guest` (a blank qcow2 base disk whose properties point at both, so a boot uses an
 * overlay disk and direct kernel boot).
 */
export async function guestImages(
  root: string,
): Promise<{ images: LocalImageService; guest: Image; initrdOnly: Image }> {
  const images = new LocalImageService(join(root, 'images'));
  await makeInitramfs(join(root, 'initrd.gz'));
  await makeBlankQcow2(join(root, 'base.qcow2'), 32);
  await images.import(
    { id: 'kernel', name: 'cloud kernel', diskFormat: 'raw' },
    { kind: 'file', path: kernel! },
  );
  const initrd = await images.import(
    { id: 'initrd', name: 'busybox initramfs', diskFormat: 'initramfs' },
    { kind: 'file', path: join(root, 'initrd.gz') },
  );
  const guest = await images.import(
    {
      id: 'guest',
      name: 'guest',
      diskFormat: 'qcow2',
      properties: {
        kernelImageId: 'kernel',
        ramdiskImageId: 'initrd',
        kernelCmdline: 'console=ttyS0 quiet',
        hypervisorType: 'qemu',
      },
    },
    { kind: 'file', path: join(root, 'base.qcow2') },
  );
  const initrdOnly = await images.import(
    {
      id: 'initrd-boot',
      name: 'initramfs boot',
      diskFormat: 'initramfs',
      properties: { kernelImageId: 'kernel' },
    },
    { kind: 'file', path: join(root, 'initrd.gz') },
  );
  void initrd;
  return { images, guest, initrdOnly };
}
