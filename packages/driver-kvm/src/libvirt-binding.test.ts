import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ErrorCode } from '@nova-lfs/core';
import { describe, expect, it } from 'vitest';
import { KvmErrorCode } from './errors.js';
import { KvmDriver } from './kvm-driver.js';
import { probeLibvirt } from './testing/index.js';

const run = promisify(execFile);
const helper = fileURLToPath(new URL('./binding-unavailable.test-helper.ts', import.meta.url));
/** Hiding a system library needs a private mount namespace, so root (as CI runs). */
const canHide = process.getuid?.() === 0;
if (!canHide && process.env.CI === 'true') throw new Error('CI=true and not root: cannot hide libvirt.so.0');

describe('libvirt binding loading', () => {
  it.skipIf(!canHide)(
    'gives a typed error naming the binding and its load error when libvirt.so.0 does not load, never retried',
    async () => {
      // A child process in its own mount namespace, where libvirt.so.0 is an empty file: koffi's
      // dlopen fails for real, as on a machine without Debian's libvirt0.
      const lib = '/usr/lib/x86_64-linux-gnu/libvirt.so.0';
      const { stdout } = await run(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount --bind /dev/null "$1" && exec node --conditions=@nova-lfs/source --import tsx "$2"',
          'sh',
          lib,
          helper,
        ],
        { cwd: fileURLToPath(new URL('..', import.meta.url)), timeout: 60_000 },
      );
      const out = JSON.parse(stdout.trim().split('\n').at(-1)!);
      expect(out.report.code).toBe(KvmErrorCode.BindingUnavailable);
      expect(out.report.details.module).toBe('@nova-lfs/libvirt');
      expect(out.report.details.loadError).toMatch(
        /libvirt\.so\.0.*(file too short|cannot open|invalid ELF)/,
      );
      expect(out.report.message).toMatch(/apt-get install libvirt0/);
      expect(out.report.causeCode).toBe(ErrorCode.LibvirtUnavailable);
      expect(out.listed).toMatchObject({ code: ErrorCode.Driver, retryable: false });
      expect(out.listed.causeCode).toBe(KvmErrorCode.BindingUnavailable);
      expect(out.probe).toEqual({ available: false, problem: 'binding' });
    },
    90_000,
  );

  it('gives a typed error naming the URI when libvirtd cannot be reached, retryable for driver calls', async () => {
    const driver = new KvmDriver({ uri: 'qemu+unix:///system?socket=/nonexistent/libvirt-sock' });
    const err = await driver.getHostReport().catch((e) => e);
    expect(err.code).toBe(KvmErrorCode.Unreachable);
    expect(err.details.uri).toContain('/nonexistent/libvirt-sock');
    const listed = await driver.listInstances().catch((e) => e);
    expect(listed).toMatchObject({ code: ErrorCode.Driver, retryable: true });
    expect(await probeLibvirt(driver.uri)).toMatchObject({ available: false, problem: 'daemon' });
    await driver.close();
  });
});
