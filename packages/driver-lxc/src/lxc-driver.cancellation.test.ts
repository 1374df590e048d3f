import { chmod, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeadlineExceededError,
  ErrorCode,
  type Image,
  type ImageService,
  type Instance,
} from '@nova-lfs/core';
import { buildTestInstance } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LxcErrorCode } from './errors.js';
import { LxcDriver } from './lxc-driver.js';
import { available, busyboxImages, removeHostContainers, tempLxcPath } from './lxc-env.test-helper.js';
import type { LxcTool } from './lxc-tools.js';

const HOST = 'cancel';
const TOOLS: LxcTool[] = [
  'lxc-start',
  'lxc-stop',
  'lxc-info',
  'lxc-ls',
  'lxc-freeze',
  'lxc-unfreeze',
  'lxc-attach',
];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!available)(
  'LxcDriver cuts hung lxc-* calls (real LXC, one tool replaced by a hanging one)',
  () => {
    const lxcPath = tempLxcPath();
    let binDir: string;
    let pidFile: string;
    let images: ImageService;
    let image: Image;
    let imageDir: string;
    let instance: Instance;
    /** Real tools, except lxc-freeze, which records its pid and hangs. */
    let hung: LxcDriver;
    let real: LxcDriver;

    beforeAll(async () => {
      ({ images, image, dir: imageDir } = await busyboxImages());
      binDir = await mkdtemp(join(tmpdir(), 'nlfs-lxc-bin-'));
      pidFile = join(binDir, 'hung.pid');
      for (const tool of TOOLS.filter((t) => t !== 'lxc-freeze'))
        await symlink(`/usr/bin/${tool}`, join(binDir, tool));
      await writeFile(join(binDir, 'lxc-freeze'), `#!/bin/sh\necho $$ >${pidFile}\nexec sleep 600\n`);
      await chmod(join(binDir, 'lxc-freeze'), 0o755);
      hung = new LxcDriver({ hostId: HOST, lxcPath, lxcBinDir: binDir });
      real = new LxcDriver({ hostId: HOST, lxcPath });
      instance = buildTestInstance({ imageId: image.id, hostId: HOST });
      await hung.spawn({ instance, flavor: instance.flavor, image, images, ports: [], volumes: [] });
    });
    afterAll(async () => {
      await hung.close();
      await real.close();
      await removeHostContainers(lxcPath, HOST);
      await rm(binDir, { recursive: true, force: true });
      await rm(imageDir, { recursive: true, force: true });
    });

    it("rejects with the signal's reason as soon as it aborts, and the hung tool is killed", async () => {
      await rm(pidFile, { force: true });
      const reason = new DeadlineExceededError({ operation: 'pause', timeoutMs: 200 });
      const controller = new AbortController();
      setTimeout(() => controller.abort(reason), 200);
      const started = performance.now();
      await expect(hung.pause(instance, { signal: controller.signal })).rejects.toBe(reason);
      expect(performance.now() - started).toBeLessThan(2000);
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      expect(alive(pid)).toBe(false);
      expect(await real.getPowerState(instance)).toBe('running');
    });

    it('kills a tool that runs past commandTimeoutMs: a retryable DriverError whose cause says it timed out', async () => {
      const impatient = new LxcDriver({ hostId: HOST, lxcPath, lxcBinDir: binDir, commandTimeoutMs: 300 });
      const err = await impatient.pause(instance).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({
        code: ErrorCode.Driver,
        details: { driver: 'lxc', operation: 'pause', retryable: true },
      });
      expect((err as Error).cause).toMatchObject({
        code: LxcErrorCode.Command,
        details: { command: 'lxc-freeze', timedOut: true },
      });
      await impatient.close();
    });

    it('names every place it looked when the lxc-* tools are missing', async () => {
      const missing = new LxcDriver({ hostId: HOST, lxcPath, lxcBinDir: '/nonexistent/bin' });
      await expect(missing.getHostReport()).rejects.toMatchObject({
        code: LxcErrorCode.Unavailable,
        details: { tried: ['/nonexistent/bin/lxc-start'] },
      });
      await missing.close();
    });
  },
);
