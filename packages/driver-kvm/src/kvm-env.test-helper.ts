import { mkdirSync, mkdtempSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { type Image, LocalImageService } from '@nova-lfs/core';
import {
  findGuestKernel,
  importGuestImages,
  makeBlankQcow2,
  makeProbeInitramfs,
  probeLibvirt,
} from './testing/index.js';

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

/**
 * Imports the probe guest (see `makeProbeInitramfs`) into `images`: `probe-initrd`, and `probe`, a
 * blank 32 MiB qcow2 disk image booting the kernel (`kernel`, imported by {@link guestImages})
 * with that initramfs; `cmdline` is its kernel command line.
 */
export async function probeImages(
  images: LocalImageService,
  root: string,
  cmdline = 'console=ttyS0 quiet',
  id = 'probe',
): Promise<Image> {
  const initrd = join(root, `${id}-initrd.gz`);
  await makeProbeInitramfs(initrd, kernel!);
  await makeBlankQcow2(join(root, `${id}-base.qcow2`), 32);
  await images.import(
    { id: `${id}-initrd`, name: 'probe initramfs', diskFormat: 'initramfs' },
    { kind: 'file', path: initrd },
  );
  return images.import(
    {
      id,
      name: 'probe guest',
      diskFormat: 'qcow2',
      properties: { kernelImageId: 'kernel', ramdiskImageId: `${id}-initrd`, kernelCmdline: cmdline },
    },
    { kind: 'file', path: join(root, `${id}-base.qcow2`) },
  );
}

/**
 * Waits for a real state that has no event (a console file growing, a domain's state), polling
 * every 100 ms; bounded.
 */
export async function until(
  check: () => Promise<boolean>,
  ms = 60_000,
  what = 'the condition',
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Waits until the serial console of the instance (as the driver reads it) has a line matching
 * `pattern` after its first `from` characters, and returns the match and the text length. A
 * bounded poll of the console file every 100 ms: the guest's output has no event to wait on.
 */
export async function waitConsole(
  read: () => Promise<string>,
  pattern: RegExp,
  from = 0,
  ms = 60_000,
): Promise<{ match: RegExpMatchArray; end: number }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await read();
    const match = text.slice(from).match(pattern);
    if (match) return { match, end: from + (match.index ?? 0) + match[0].length };
    if (Date.now() > deadline)
      throw new Error(
        `no ${pattern} on the console within ${ms} ms; it has:\n${text.slice(from).slice(-2000)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Writes `tag` at the start of a raw volume file, where the probe guest reads a disk's tag. */
export async function tagRaw(path: string, tag: string): Promise<void> {
  const f = await open(path, 'r+');
  try {
    await f.write(`${tag}\n`, 0);
  } finally {
    await f.close();
  }
}
