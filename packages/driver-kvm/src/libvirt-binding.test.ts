import { copyFile, mkdir, mkdtemp, readdir, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmErrorCode } from './errors.js';
import { KvmDriver } from './kvm-driver.js';
import { type LibvirtModule, loadLibvirt } from './libvirt-binding.js';
import { probeLibvirt } from './testing/index.js';

/** The installed binding package (pnpm links it beside this package's sources). */
const installed = fileURLToPath(new URL('../node_modules/@unraid/libvirt', import.meta.url));

describe('libvirt binding loading', () => {
  let work: string;
  /** Loads a copy of the real binding's JavaScript whose native addon was never built. */
  let unbuilt: () => Promise<LibvirtModule>;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nlfs-unbuilt-libvirt-'));
    const real = await realpath(installed);
    const copy = join(work, 'libvirt');
    await mkdir(join(copy, 'dist'), { recursive: true });
    await copyFile(join(real, 'package.json'), join(copy, 'package.json'));
    for (const f of await readdir(join(real, 'dist')))
      await copyFile(join(real, 'dist', f), join(copy, 'dist', f));
    // its JavaScript dependencies resolve as installed; only build/Release/libvirt.node is missing
    await mkdir(join(copy, 'node_modules'));
    await symlink(await realpath(join(dirname(real), '..', 'xml2js')), join(copy, 'node_modules', 'xml2js'));
    const entry = pathToFileURL(join(copy, 'dist', 'index.js')).href;
    unbuilt = async () => (await import(entry)) as LibvirtModule;
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('gives a typed error naming the module and its load error when the module is missing', async () => {
    const driver = new KvmDriver({
      loader: async () =>
        (await import(pathToFileURL(join(work, 'missing', 'index.js')).href)) as LibvirtModule,
    });
    const err = await driver.getHostReport().catch((e) => e);
    expect(err.code).toBe(KvmErrorCode.BindingUnavailable);
    expect(err.details.module).toBe('@unraid/libvirt');
    expect(err.details.loadError).toMatch(/Cannot find module/);
    expect(err.cause.code).toBe('ERR_MODULE_NOT_FOUND');
  });

  it('reports a binding whose native addon was never built as the binding, not as libvirtd', async () => {
    const err = await loadLibvirt('qemu:///system', unbuilt).catch((e) => e);
    expect(err.code).toBe(KvmErrorCode.BindingUnavailable);
    expect(err.details.loadError).toMatch(/build\/Release\/libvirt/);
    const driver = new KvmDriver({ loader: unbuilt });
    await expect(driver.getHostReport()).rejects.toMatchObject({ code: KvmErrorCode.BindingUnavailable });
    const probe = await probeLibvirt('qemu:///system', unbuilt);
    expect(probe).toMatchObject({ available: false, problem: 'binding' });
    expect(!probe.available && probe.reason).toMatch(
      /build\/Release\/libvirt.*pnpm rebuild @unraid\/libvirt/,
    );
  });

  it('fails the driver calls of a host whose binding did not load with a DriverError that does not retry', async () => {
    const driver = new KvmDriver({ loader: unbuilt });
    const err = await driver.listInstances().catch((e) => e);
    expect(err).toMatchObject({ code: 'NLFS_DRIVER_ERROR', retryable: false });
    expect(err.cause.code).toBe(KvmErrorCode.BindingUnavailable);
  });

  it('gives a typed error naming the URI when libvirtd cannot be reached, retryable for driver calls', async () => {
    const driver = new KvmDriver({ uri: 'qemu+unix:///system?socket=/nonexistent/libvirt-sock' });
    const err = await driver.getHostReport().catch((e) => e);
    expect(err.code).toBe(KvmErrorCode.Unreachable);
    expect(err.details.uri).toContain('/nonexistent/libvirt-sock');
    const listed = await driver.listInstances().catch((e) => e);
    expect(listed).toMatchObject({ code: 'NLFS_DRIVER_ERROR', retryable: true });
    expect(await probeLibvirt(driver.uri)).toMatchObject({ available: false, problem: 'daemon' });
  });
});
