// Run with `pnpm test:hyperv-real` (never by `pnpm test`): the conformance suite against a REAL
// Hyper-V host given by NOVA_LFS_HYPERV_* (see real-host/check-env.mjs). Not run on the project's
// machines (no Hyper-V there): nothing here has been seen to pass yet.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalImageService } from '@nova-lfs/core';
import { describeDriverConformance } from '@nova-lfs/core/testing';
import { HyperVDriver } from './hyperv-driver.js';

function env(name: string): string {
  const v = process.env[name];
  if (!v)
    throw new Error(`${name} is not set (run through pnpm test:hyperv-real, which explains what it needs)`);
  return v;
}

describeDriverConformance(
  'HyperVDriver (REAL Hyper-V host)',
  async () => {
    const key = env('NOVA_LFS_HYPERV_KEY');
    const privateKey = key.startsWith('-----BEGIN') ? key : await readFile(key, 'utf8');
    const dir = await mkdtemp(join(tmpdir(), 'nlfs-hyperv-real-'));
    let imagePath = process.env.NOVA_LFS_HYPERV_IMAGE;
    if (!imagePath) {
      imagePath = join(dir, 'blank.raw'); // a VM with a blank disk still runs (it finds nothing to boot)
      await writeFile(imagePath, Buffer.alloc(4 * 2 ** 20));
    }
    const images = new LocalImageService(join(dir, 'images'));
    const image = await images.import(
      { name: 'hyperv-real', diskFormat: 'raw', properties: { hypervisorType: 'hyperv' } },
      { kind: 'file', path: imagePath },
    );
    const hostId = `hyperv-real-${process.pid}`;
    const driver = new HyperVDriver({
      hostId,
      ssh: {
        host: env('NOVA_LFS_HYPERV_HOST'),
        port: Number(process.env.NOVA_LFS_HYPERV_PORT ?? 22),
        username: env('NOVA_LFS_HYPERV_USER'),
        privateKey,
        hostKeySha256: env('NOVA_LFS_HYPERV_HOST_FINGERPRINT'),
      },
      diskRoot: process.env.NOVA_LFS_HYPERV_DISK_ROOT ?? 'C:\\NovaLFS\\instances',
      imageRoot: process.env.NOVA_LFS_HYPERV_IMAGE_ROOT ?? 'C:\\NovaLFS\\images',
      stopTimeoutSeconds: 10,
    });
    return {
      driver,
      images,
      image,
      hostId,
      cleanup: async () => {
        await driver.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  { timeoutMs: 240_000, unsupportedDiskFormat: 'qcow2' },
);
