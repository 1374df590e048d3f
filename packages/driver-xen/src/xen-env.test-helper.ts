import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { type Image, LocalImageService } from '@nova-lfs/core';
import {
  findXenGuestKernel,
  importXenGuestImages,
  type NestedXen,
  nestedXenUnavailableReason,
  startNestedXen,
  stopNestedXen,
} from './testing/index.js';

/**
 * Whether the nested Xen can run here, decided once per test file. With CI=true its absence is
 * an error (and so is a dom0 that does not boot: {@link nestedXenEnv} throws).
 */
export const kernel = await findXenGuestKernel();
const reason =
  nestedXenUnavailableReason() ??
  (kernel ? undefined : 'no generic /boot/vmlinuz-*-amd64 (apt-get install linux-image-amd64)');
export const available = reason === undefined;
if (reason) {
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping real Xen tests: ${reason}`);
}

/** The booted nested Xen, a test root inside its 9p share, and the test guest's images. */
export interface NestedXenEnv {
  readonly xen: NestedXen;
  /** A fresh folder in the share (dom0 sees it at the same path). */
  readonly root: string;
  readonly images: LocalImageService;
  readonly guest: Image;
}

let env: Promise<NestedXenEnv> | undefined;

/** Boots the nested Xen once per test file (idempotent start script) and imports the guest images. */
export function nestedXenEnv(): Promise<NestedXenEnv> {
  env ??= (async () => {
    const xen = await startNestedXen();
    console.info(
      `nested Xen: ${xen.uri} ${xen.booted ? `booted in ${(xen.startMs / 1000).toFixed(1)} s` : 'was running'}`,
    );
    mkdirSync(join(xen.shareDir, 'test'), { recursive: true });
    const root = mkdtempSync(join(xen.shareDir, 'test', 'xen-'));
    const images = new LocalImageService(join(root, 'image-cache'));
    const { guest } = await importXenGuestImages(images, join(root, 'work'), kernel!);
    return { xen, root, images, guest };
  })();
  return env;
}

/** Stops the nested Xen if this file booted it (by its PID file). */
export async function stopNestedXenIfBooted(): Promise<void> {
  if (!env) return;
  const e = await env.catch(() => undefined);
  if (e?.xen.booted) await stopNestedXen();
}
