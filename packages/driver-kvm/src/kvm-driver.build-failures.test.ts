import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { type ComputeEngine, createCompute, defaultEngineOptions, ErrorCode } from '@nova-lfs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, testRoot } from './kvm-env.test-helper.js';

const run = promisify(execFile);

/** A build past its deadline on a real libvirt host, through the engine. */
describe.skipIf(!available)('KVM build past its deadline through the engine (real libvirtd + QEMU)', () => {
  let compute: ComputeEngine;
  let driver: KvmDriver;
  let root: string;

  beforeAll(async () => {
    root = testRoot();
    const { images } = await guestImages(root);
    driver = new KvmDriver({ hostId: 'kvm-deadline', stateDir: `${root}/state` });
    compute = await createCompute({
      storage: 'memory',
      images,
      flavors: [{ id: 'vm.tiny', vcpus: 1, ramMb: 192 }],
      hosts: [{ id: 'kvm-deadline', driver }],
      // writing the overlay and defining and starting the domain take far more than 40 ms
      engine: { timeouts: { ...defaultEngineOptions.timeouts, spawn: 40 } },
    });
  }, 120_000);

  afterAll(async () => {
    await compute?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it('ends in ERROR naming the deadline, with no domain and no instance directory left', async () => {
    const [vm] = await compute.create({
      name: 'late',
      projectId: 'p',
      userId: 'u',
      flavorId: 'vm.tiny',
      imageId: 'guest',
    });
    expect(vm).toMatchObject({ vmState: 'error', fault: { code: ErrorCode.DeadlineExceeded } });
    const { stdout } = await run('virsh', ['-c', 'qemu:///system', 'list', '--all', '--uuid']);
    expect(stdout).not.toContain(vm!.id);
    expect(existsSync(driver.instanceDir(vm!.id))).toBe(false);
  }, 60_000);
});
