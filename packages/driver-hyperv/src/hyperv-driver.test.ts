import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DeadlineExceededError, ErrorCode, type Image, type LocalImageService } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HyperVErrorCode } from './errors.js';
import { HyperVDriver, parseVmNotes, vmName } from './hyperv-driver.js';
import {
  available,
  clearFault,
  type FakeCall,
  fake,
  fakeCalls,
  fakeDriver,
  injectFault,
  rawImages,
  tempRoots,
} from './hyperv-env.test-helper.js';
import { SCRIPT_NAMES, scriptSha256 } from './scripts.js';
import { fixedVhdFooter, vhdDataBytes } from './vhd.js';

const HOSTILE = `x'; Remove-Item -Recurse -Force C:\\ #"$(Stop-Computer -Force)\`$env:PATH\n\r\0@{a=1}|&<b>&amp;'')`;

describe.skipIf(!available)(
  'HyperVDriver against the FAKE Hyper-V host (sshd + emulated cmdlets, not Hyper-V)',
  () => {
    let images: LocalImageService;
    let image: Image;
    let bytes: Buffer;
    let imageDir: string;
    let driver: HyperVDriver;
    let roots: { diskRoot: string; imageRoot: string; dir: string };
    const cleanups: (() => Promise<void>)[] = [];
    const spawned: { d: HyperVDriver; id: string }[] = [];
    const spawn = async (
      d: HyperVDriver,
      overrides: Parameters<typeof buildTestInstance>[0] = {},
      opts: { signal?: AbortSignal; image?: Image } = {},
    ) => {
      const i = buildTestInstance({ hostId: 'hyperv-test', imageId: image.id, ...overrides });
      spawned.push({ d, id: i.id });
      const run = d.spawn({
        instance: i,
        flavor: i.flavor,
        image: opts.image ?? image,
        images,
        ports: [],
        volumes: [],
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      return { i, run };
    };
    const callsFor = (calls: FakeCall[], id: string) =>
      calls.filter(
        (c) =>
          c.args?.instanceId === id ||
          c.args?.name === vmName(id) ||
          (c as { faultFor?: string }).faultFor === id,
      );

    beforeAll(async () => {
      ({ images, image, bytes, dir: imageDir } = await rawImages());
      const made = await fakeDriver('hyperv-test');
      driver = made.driver;
      roots = made;
      cleanups.push(async () => {
        await rm(made.dir, { recursive: true, force: true });
        await rm(imageDir, { recursive: true, force: true });
      });
    });

    afterAll(async () => {
      for (const { d, id } of spawned) {
        await clearFault(id);
        await d.destroy(buildTestInstance({ id })).catch(() => undefined);
      }
      await driver?.close();
      for (const c of cleanups) await c();
    });

    it('uploads each image once over SFTP as a fixed VHD whose bytes the host checked by sha256', async () => {
      const since = Date.now();
      const a = await spawn(driver);
      const b = await spawn(driver);
      await Promise.all([a.run, b.run]);
      const files = (await readdir(roots.imageRoot)).filter((f) => f.endsWith('.vhd'));
      expect(files).toEqual([`${image.sha256}.vhd`]);
      const uploaded = await readFile(join(roots.imageRoot, files[0]!));
      const size = vhdDataBytes(bytes.length);
      const expected = Buffer.concat([
        bytes,
        Buffer.alloc(size - bytes.length),
        fixedVhdFooter(size, image.sha256),
      ]);
      expect(uploaded.equals(expected)).toBe(true);
      const commits = (await fakeCalls(since)).filter(
        (c) => c.script === 'image-commit' && String(c.args?.path).startsWith(roots.imageRoot),
      );
      expect(commits).toHaveLength(1);
      expect(commits[0]!.args?.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
      // a third spawn finds the image on the host and does not upload again
      const c = await spawn(driver);
      await c.run;
      const again = (await fakeCalls(since)).filter(
        (x) => x.script === 'image-commit' && String(x.args?.path).startsWith(roots.imageRoot),
      );
      expect(again).toHaveLength(1);
      for (const x of [a, b, c]) await driver.destroy(x.i);
      expect(await readdir(roots.diskRoot)).toEqual([]); // differencing disks went with their VMs
    });

    it('hostile project, host id and paths reach the host as data: known scripts only, values byte for byte', async () => {
      const hostileRoots = tempRoots();
      const weird = join(hostileRoots.dir, `a'"$(touch PWNED); Remove-Item -Recurse x \`b`);
      await mkdir(join(weird, 'disks'), { recursive: true });
      await mkdir(join(weird, 'images'), { recursive: true });
      cleanups.push(() => rm(hostileRoots.dir, { recursive: true, force: true }));
      const hostId = `host${HOSTILE}`;
      const d = new HyperVDriver({
        hostId,
        ssh: {
          host: fake!.host,
          port: fake!.port,
          username: fake!.username,
          privateKey: fake!.privateKey,
          hostKeySha256: fake!.hostKeySha256,
        },
        diskRoot: join(weird, 'disks'),
        imageRoot: join(weird, 'images'),
      });
      cleanups.push(() => d.close());
      const since = Date.now();
      const { i, run } = await spawn(d, {
        name: HOSTILE,
        projectId: `p${HOSTILE}`, // not a valid id in the API: the driver must not rely on that
        metadata: { [HOSTILE]: HOSTILE },
      });
      await run;
      expect(await d.getPowerState(i)).toBe('running');
      const listed = (await d.listInstances()).find((g) => g.instanceId === i.id);
      expect(listed).toEqual({ instanceId: i.id, projectId: `p${HOSTILE}`, powerState: 'running' });
      await d.pause(i);
      await d.unpause(i);
      await d.destroy(i);
      expect(await d.getPowerState(i)).toBe('nostate');

      const calls = callsFor(await fakeCalls(since), i.id);
      expect(calls.length).toBeGreaterThanOrEqual(6);
      const known = new Set(SCRIPT_NAMES.map((n) => scriptSha256(n)));
      for (const c of calls) {
        expect(c.known).toBe(true);
        expect(known.has((c as { textSha256?: string }).textSha256 ?? '')).toBe(true);
      }
      const spawnCall = calls.find((c) => c.script === 'spawn')!;
      expect(parseVmNotes(String(spawnCall.args?.notes))).toEqual({
        instanceId: i.id,
        projectId: `p${HOSTILE}`,
        hostId,
      });
      expect(spawnCall.args?.diskPath).toBe(join(weird, 'disks', `${vmName(i.id)}.vhd`));
      expect(String(spawnCall.args?.parentPath).startsWith(join(weird, 'images'))).toBe(true);
      // nothing ran: no PWNED file anywhere the FAKE could have made one
      expect((await readdir(weird)).sort()).toEqual(['disks', 'images']);
      const rejected = (await fakeCalls(since)).filter((c) => !c.known);
      expect(rejected).toEqual([]);
    });

    it('maps PowerShell errors to typed DriverErrors: invalid state, not found, out of memory, bad vCPU count', async () => {
      const { i, run } = await spawn(driver);
      await run;
      await driver.powerOff(i, { timeoutMs: 1_000 });
      const paused = await driver.pause(i).catch((e: unknown) => e);
      expect(paused).toMatchObject({
        code: ErrorCode.Driver,
        details: { driver: 'hyperv', operation: 'pause', instanceId: i.id, retryable: false },
        cause: {
          code: HyperVErrorCode.Command,
          details: {
            kind: 'invalidState',
            record: {
              fullyQualifiedErrorId: 'InvalidState,Microsoft.HyperV.PowerShell.Commands.SuspendVM',
              category: 'InvalidOperation',
            },
          },
        },
      });
      await driver.destroy(i);

      const gone = await driver.powerOn(i).catch((e: unknown) => e);
      expect(gone).toMatchObject({
        details: { operation: 'powerOn', retryable: false },
        cause: {
          details: {
            kind: 'notFound',
            record: { fullyQualifiedErrorId: 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM' },
          },
        },
      });

      const big = await spawn(driver, { flavor: { ...tinyTestFlavor, ramMb: 200 * 1024 } });
      const oom = await big.run.catch((e: unknown) => e);
      expect(oom).toMatchObject({
        details: { operation: 'spawn', retryable: true, reschedule: true },
        cause: { details: { kind: 'insufficientResources', record: { category: 'ResourceUnavailable' } } },
      });
      expect(await driver.getPowerState(big.i)).toBe('nostate'); // the script removed what it made
      expect(await readdir(roots.diskRoot)).not.toContain(`${vmName(big.i.id)}.vhd`);

      const wide = await spawn(driver, { flavor: { ...tinyTestFlavor, vcpus: 64 } });
      const cpu = await wide.run.catch((e: unknown) => e);
      expect(cpu).toMatchObject({
        details: { operation: 'spawn' },
        cause: {
          details: {
            record: { fullyQualifiedErrorId: expect.stringMatching(/^InvalidParameter,.*SetVMProcessor$/) },
          },
        },
      });
      expect(await driver.getPowerState(wide.i)).toBe('nostate');
    });

    it('maps an access denial, garbage output and an error without a record (FAKE faults) to DriverErrors', async () => {
      const { i, run } = await spawn(driver);
      await run;
      await injectFault(i.id, {
        script: 'get',
        once: true,
        error: {
          FullyQualifiedErrorId: 'AccessDenied,Microsoft.HyperV.PowerShell.Commands.GetVM',
          CategoryInfo: {
            Category: 'PermissionDenied',
            Reason: 'VirtualizationException',
            TargetName: '',
            Activity: 'Get-VM',
          },
          Exception: {
            TypeName: 'Microsoft.HyperV.PowerShell.VirtualizationException',
            Message: 'You do not have the required permission to complete this task.',
          },
        },
      });
      await expect(driver.getPowerState(i)).rejects.toMatchObject({
        details: { operation: 'getPowerState', retryable: false, reschedule: true },
        cause: { details: { kind: 'accessDenied' } },
      });
      await injectFault(i.id, { script: 'get', once: true, stdout: 'this is not json\n', exitCode: 0 });
      await expect(driver.getPowerState(i)).rejects.toMatchObject({
        cause: { details: { problem: 'no result line on stdout' } },
      });
      await injectFault(i.id, {
        script: 'get',
        once: true,
        stdout: 'NOVALFS:{"Found":true,"VM":{"Name":1}}\n',
      });
      await expect(driver.getPowerState(i)).rejects.toMatchObject({
        cause: { details: { problem: expect.stringMatching(/^result does not match its schema at VM\./) } },
      });
      await injectFault(i.id, {
        script: 'power',
        op: 'pause',
        once: true,
        stderr: 'Suspend-VM : something odd\r\n    + CategoryInfo : NotSpecified\r\n',
        exitCode: 1,
      });
      await expect(driver.pause(i)).rejects.toMatchObject({
        cause: {
          details: {
            problem: 'failed without an error record',
            stderr: expect.stringContaining('something odd'),
          },
        },
      });
      expect(await driver.getPowerState(i)).toBe('running');
      await driver.destroy(i);
    });

    it('sixteen calls contending for one VM mutex on the host all run (each releases it once, to the next waiter)', async () => {
      const { i, run } = await spawn(driver);
      await run;
      // each hard reboot takes the VM's mutex on the FAKE host (8 channels at once); a waiter takes
      // it as the previous script releases it, while that script is still exiting
      const results = await Promise.allSettled(Array.from({ length: 16 }, () => driver.reboot(i, 'hard')));
      const failed = results.filter((r) => r.status === 'rejected');
      expect(failed.map((r) => String((r as PromiseRejectedResult).reason?.cause?.details?.stderr))).toEqual(
        [],
      );
      expect(await driver.getPowerState(i)).toBe('running');
      await driver.destroy(i);
    });

    it('an abort mid-call closes the channel and rejects at once; a destroy after it waits for the host and removes the VM', async () => {
      const { i, run } = await spawn(driver);
      await run;
      await injectFault(i.id, { script: 'power', op: 'pause', once: true, hangMs: 1_500 });
      const controller = new AbortController();
      const reason = new DeadlineExceededError({ operation: 'pause', timeoutMs: 100 });
      const started = Date.now();
      setTimeout(() => controller.abort(reason), 300);
      await expect(driver.pause(i, { signal: controller.signal })).rejects.toBe(reason);
      expect(Date.now() - started).toBeLessThan(1_200);
      // the FAKE host, like a real one, finishes the script after the channel closed; destroy
      // waits for the VM's mutex and then removes it
      await driver.destroy(i);
      expect(await driver.getPowerState(i)).toBe('nostate');
      expect((await driver.listInstances()).some((g) => g.instanceId === i.id)).toBe(false);

      const aborted = new AbortController();
      await injectFault(i.id, { script: 'spawn', once: true, hangMs: 1_000 });
      const again = driver.spawn({
        instance: i,
        flavor: i.flavor,
        image,
        images,
        ports: [],
        volumes: [],
        signal: aborted.signal,
      });
      setTimeout(() => aborted.abort(reason), 400);
      await expect(again).rejects.toBe(reason);
      await driver.destroy(i); // waits for the spawn still running on the host, then removes its VM
      expect(await driver.getPowerState(i)).toBe('nostate');
    });

    it('a call past commandTimeoutMs is a retryable DriverError with a timed-out cause', async () => {
      const made = await fakeDriver('hyperv-timeout', { commandTimeoutMs: 3_000 });
      cleanups.push(async () => {
        await made.driver.close();
        await rm(made.dir, { recursive: true, force: true });
      });
      const { i, run } = await spawn(made.driver, { hostId: 'hyperv-timeout' });
      await run;
      await injectFault(i.id, { script: 'get', once: true, hangMs: 5_000 });
      const err = await made.driver.getPowerState(i).catch((e: unknown) => e);
      expect(err).toMatchObject({
        details: { operation: 'getPowerState', retryable: true },
        cause: { details: { timedOut: true, kind: 'timeout' } },
      });
      await made.driver.destroy(i);
    });

    it('rebuilds in place over a new image: same VM, new differencing disk, running', async () => {
      const other = await images.import(
        { id: 'raw-disk-2', name: 'raw-disk-2', diskFormat: 'raw' },
        { kind: 'bytes', bytes: Buffer.alloc(2 ** 20, 0x42) },
      );
      const { i, run } = await spawn(driver);
      await run;
      const before = (await readFile(join(roots.diskRoot, `${vmName(i.id)}.vhd`), 'utf8')).toString();
      await driver.rebuild({
        instance: { ...i, imageId: other.id },
        flavor: i.flavor,
        image: other,
        images,
        ports: [],
        volumes: [],
      });
      expect(await driver.getPowerState(i)).toBe('running');
      const after = JSON.parse(await readFile(join(roots.diskRoot, `${vmName(i.id)}.vhd`), 'utf8'));
      expect(after.parent).toBe(join(roots.imageRoot, `${other.sha256}.vhd`));
      expect(before).toContain(image.sha256);
      await driver.destroy(i);
    });

    it('keeps two host ids on one Hyper-V host apart and runs 12 spawns at once over one connection', async () => {
      const made = await fakeDriver('hyperv-other');
      cleanups.push(async () => {
        await made.driver.close();
        await rm(made.dir, { recursive: true, force: true });
      });
      const mine = await Promise.all(Array.from({ length: 12 }, () => spawn(driver)));
      await Promise.all(mine.map((m) => m.run));
      const theirs = await spawn(made.driver, { hostId: 'hyperv-other' });
      await theirs.run;
      const listed = new Set((await driver.listInstances()).map((g) => g.instanceId));
      for (const m of mine) expect(listed.has(m.i.id)).toBe(true);
      expect(listed.has(theirs.i.id)).toBe(false);
      expect(await driver.getPowerState(theirs.i)).toBe('nostate');
      expect(await made.driver.getPowerState(theirs.i)).toBe('running');
      await Promise.all([...mine.map((m) => driver.destroy(m.i)), made.driver.destroy(theirs.i)]);
    });

    it('refuses a host whose key is not the expected one, and names an unreachable host', async () => {
      const wrongKey = new HyperVDriver({
        hostId: 'hyperv-wrong-key',
        ssh: {
          host: fake!.host,
          port: fake!.port,
          username: fake!.username,
          privateKey: fake!.privateKey,
          hostKeySha256: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        },
        diskRoot: roots.diskRoot,
        imageRoot: roots.imageRoot,
      });
      await expect(wrongKey.listInstances()).rejects.toMatchObject({
        details: { retryable: true },
        cause: { code: HyperVErrorCode.Connection, details: { stage: 'host key' } },
      });
      await wrongKey.close();
      const nobody = new HyperVDriver({
        hostId: 'hyperv-nobody',
        ssh: {
          host: '127.0.0.1',
          port: 1,
          username: 'x',
          privateKey: fake!.privateKey,
          hostKeySha256: 'SHA256:x',
        },
        diskRoot: roots.diskRoot,
        imageRoot: roots.imageRoot,
      });
      await expect(nobody.getHostReport()).rejects.toMatchObject({
        cause: { code: HyperVErrorCode.Connection, details: { host: '127.0.0.1', port: 1 } },
      });
      await nobody.close();
      expect(
        () =>
          new HyperVDriver({
            hostId: 'h',
            ssh: { host: '127.0.0.1', username: 'x', privateKey: 'k' },
            diskRoot: 'C:\\d',
            imageRoot: 'C:\\i',
          }),
      ).toThrow(
        expect.objectContaining({ code: ErrorCode.Configuration, details: { setting: 'ssh.hostKeySha256' } }),
      );
    });

    it('refuses an instance id that is not a uuid before touching the host', async () => {
      const i = buildTestInstance({ id: 'nova-*', imageId: image.id });
      await expect(
        driver.spawn({ instance: i, flavor: i.flavor, image, images, ports: [], volumes: [] }),
      ).rejects.toMatchObject({ details: { retryable: false, reschedule: false } });
      expect(await driver.getPowerState(i)).toBe('nostate');
    });
  },
);
