import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const scripts = fileURLToPath(new URL('../../../../scripts/xen/', import.meta.url));

/** The project's nested Xen (Xen 4.17 + dom0 under QEMU TCG, scripts/xen/start-dom0.sh). */
export interface NestedXen {
  /** libvirt URI of dom0's libxl driver, over the loopback port forward. */
  readonly uri: string;
  /** The folder shared into dom0 at the same path (images, console logs). */
  readonly shareDir: string;
  /** xenconsoled's guest log folder inside {@link NestedXen.shareDir}. */
  readonly consoleLogDir: string;
  /** How long the start took, ms (about 0 when it was already running). */
  readonly startMs: number;
  /** Whether this call booted it (then {@link stopNestedXen} is for this caller to call). */
  readonly booted: boolean;
}

/** Data folder of the nested Xen (`NOVA_LFS_XEN_DIR`, default `/var/lib/nova-lfs/xen`). */
export function nestedXenDir(): string {
  return process.env.NOVA_LFS_XEN_DIR ?? '/var/lib/nova-lfs/xen';
}

/** Why the nested Xen cannot be started here, or undefined when its packages are installed. */
export function nestedXenUnavailableReason(): string | undefined {
  for (const f of [
    '/boot/xen-4.17-amd64.gz',
    '/usr/lib/xen-4.17/bin/xl',
    '/usr/bin/qemu-system-x86_64',
    '/usr/sbin/libvirtd',
  ])
    if (!existsSync(f)) return `${f} is missing (bash scripts/install-system.sh installs it)`;
  if (!existsSync('/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_libxl.so'))
    return "libvirt's libxl driver is missing (apt-get install libvirt-daemon-driver-xen)";
  return undefined;
}

/**
 * Boots the nested Xen unless it runs already (idempotent, PID file) and waits until dom0's
 * libvirtd answers. @throws Error with the script's output when it does not come up.
 */
export async function startNestedXen(): Promise<NestedXen> {
  const dir = nestedXenDir();
  const already = existsSync(`${dir}/qemu.pid`);
  const t0 = performance.now();
  const { stdout } = await run('bash', [`${scripts}start-dom0.sh`], { timeout: 600_000 }).catch(
    (e: unknown) => {
      const err = e as { stdout?: string; stderr?: string; message: string };
      throw new Error(`scripts/xen/start-dom0.sh failed: ${err.stderr || err.message}`);
    },
  );
  const uri = stdout.trim().split('\n').at(-1) ?? '';
  return {
    uri,
    shareDir: `${dir}/share`,
    consoleLogDir: `${dir}/share/console`,
    startMs: performance.now() - t0,
    booted: !already,
  };
}

/** Stops the nested Xen by its PID file (scripts/xen/stop-dom0.sh). */
export async function stopNestedXen(): Promise<void> {
  await run('bash', [`${scripts}stop-dom0.sh`], { timeout: 60_000 });
}
