import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadlineExceededError, ErrorCode } from '../errors.js';
import type { Flavor } from '../model/flavor.js';
import type { Image } from '../model/image.js';
import type { Instance } from '../model/instance.js';
import {
  type ComputeDriver,
  noCapabilities,
  supportsConsoleOutput,
  supportsPause,
  supportsPowerControl,
  supportsReboot,
  supportsSuspend,
} from '../ports/driver.js';
import type { ImageService } from '../ports/image-service.js';
import { buildTestInstance, tinyTestFlavor } from './test-instance.js';

/** What a driver package hands to the conformance suite. */
export interface ConformanceSubject {
  readonly driver: ComputeDriver;
  /** An image the driver can boot, registered in `images`. */
  readonly image: Image;
  readonly images: ImageService;
  /** Flavor to boot with (default 1 vCPU / 128 MiB). */
  readonly flavor?: Flavor;
  /** Host id to stamp on instances. */
  readonly hostId?: string;
  /** Called after the suite. */
  readonly cleanup?: () => Promise<void>;
}

/** Options of {@link describeDriverConformance}. */
export interface ConformanceOptions {
  /** Per-test timeout in ms (real guests take seconds). Default 60,000. */
  readonly timeoutMs?: number;
  /**
   * A disk format the driver cannot run (e.g. `qcow2` for a container driver): the suite then
   * checks that spawning it fails with `reschedule: false`, since no other host can help.
   */
  readonly unsupportedDiskFormat?: Image['diskFormat'];
}

/**
 * When the abort cases abort a running spawn: right after the call (before any of its awaits
 * settles), on the next turn of the event loop, then after growing delays in ms, so that the
 * abort lands at different steps of a real driver's spawn.
 */
const abortPoints = ['sync', 'immediate', 20, 100, 300, 700] as const;

function abortAt(point: (typeof abortPoints)[number], abort: () => void): void {
  if (point === 'sync') abort();
  else if (point === 'immediate') setImmediate(abort);
  else setTimeout(abort, point);
}

/** Settles to the error a promise rejects with, or to `resolved`. */
async function outcome(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'resolved',
    (e: unknown) => e,
  );
}

/**
 * The shared driver test case (Nova's virt driver tests, Nomad's harness): every driver runs it
 * against its real engine. Checks the host report, capability flags against implemented
 * interfaces, spawn/list/power/destroy behaviour, idempotent destroy, hostile names, cancellation
 * (an aborted call rejects with its signal's reason and leaves nothing `destroy` cannot remove) and
 * error classification (images no host can run fail with `reschedule: false`).
 *
 * Call it at the top level of a `*.test.ts` file; `setup` runs in `beforeAll`.
 */
export function describeDriverConformance(
  name: string,
  setup: () => Promise<ConformanceSubject>,
  options: ConformanceOptions = {},
): void {
  const timeout = options.timeoutMs ?? 60_000;
  describe(`driver conformance: ${name}`, () => {
    let subject: ConformanceSubject;
    const spawned: Instance[] = [];
    const instance = (overrides: Partial<Instance> = {}): Instance => {
      const i = buildTestInstance({
        flavor: subject.flavor ?? tinyTestFlavor,
        imageId: subject.image.id,
        hostId: subject.hostId ?? 'conformance-host',
        ...overrides,
      });
      spawned.push(i);
      return i;
    };
    const spawn = async (i: Instance, signal?: AbortSignal, image = subject.image): Promise<void> => {
      await subject.driver.spawn({
        instance: i,
        flavor: i.flavor,
        image,
        images: subject.images,
        ports: [],
        volumes: [],
        ...(signal ? { signal } : {}),
      });
    };
    const expectNoGuest = async (i: Instance): Promise<void> => {
      expect(await subject.driver.getPowerState(i)).toBe('nostate');
      expect((await subject.driver.listInstances()).some((g) => g.instanceId === i.id)).toBe(false);
    };
    const deadline = (operation: string) => new DeadlineExceededError({ operation, timeoutMs: 0 });

    beforeAll(async () => {
      subject = await setup();
    }, timeout * 2);

    afterAll(async () => {
      if (!subject) return;
      for (const i of spawned) await subject.driver.destroy(i).catch(() => undefined);
      await subject.cleanup?.();
    }, timeout * 2);

    it('reports its host: hypervisor type, architecture and VCPU / MEMORY_MB inventory', async () => {
      const report = await subject.driver.getHostReport();
      expect(report.hypervisorType).toMatch(/\S/);
      expect(report.architecture).toMatch(/\S/);
      expect(report.inventory.VCPU?.total).toBeGreaterThan(0);
      expect(report.inventory.MEMORY_MB?.total).toBeGreaterThan(0);
      expect(Array.isArray(report.traits)).toBe(true);
    });

    it('declares a frozen capabilities record whose flags match the interfaces it implements', () => {
      const caps = subject.driver.capabilities;
      expect(Object.isFrozen(caps)).toBe(true);
      expect(Object.keys(caps).sort()).toEqual(Object.keys(noCapabilities).sort());
      const d = subject.driver;
      expect(supportsPowerControl(d)).toBe(caps.powerControl);
      expect(supportsReboot(d)).toBe(caps.reboot);
      expect(supportsPause(d)).toBe(caps.pause);
      expect(supportsSuspend(d)).toBe(caps.suspend);
      expect(supportsConsoleOutput(d)).toBe(caps.consoleOutput);
    });

    it(
      'spawns a guest that runs and is listed, then destroys it idempotently',
      async () => {
        const i = instance();
        await spawn(i);
        expect(await subject.driver.getPowerState(i)).toBe('running');
        const listed = await subject.driver.listInstances();
        expect(listed.find((g) => g.instanceId === i.id)?.powerState).toBe('running');
        await subject.driver.destroy(i);
        await subject.driver.destroy(i);
        expect(await subject.driver.getPowerState(i)).toBe('nostate');
        expect((await subject.driver.listInstances()).some((g) => g.instanceId === i.id)).toBe(false);
      },
      timeout,
    );

    it('destroys a guest that never existed without error', async () => {
      const i = instance();
      await expect(subject.driver.destroy(i)).resolves.toBeUndefined();
      expect(await subject.driver.getPowerState(i)).toBe('nostate');
    });

    it(
      'handles hostile names and metadata (XML, shell and JSON metacharacters) safely',
      async () => {
        const hostile = `x'; rm -rf / #<b>&amp;"$(reboot)\`{}]\\`;
        const i = instance({ name: hostile, metadata: { [hostile]: hostile, owner: '<script>' } });
        await spawn(i);
        expect(await subject.driver.getPowerState(i)).toBe('running');
        await subject.driver.destroy(i);
        expect(await subject.driver.getPowerState(i)).toBe('nostate');
      },
      timeout,
    );

    it(
      'runs the optional power, pause, suspend, reboot and console operations it declares',
      async () => {
        const d = subject.driver;
        const i = instance();
        await spawn(i);
        if (supportsPause(d)) {
          await d.pause(i);
          expect(await d.getPowerState(i)).toBe('paused');
          await d.unpause(i);
          expect(await d.getPowerState(i)).toBe('running');
        }
        if (supportsReboot(d)) {
          await d.reboot(i, 'hard');
          expect(await d.getPowerState(i)).toBe('running');
        }
        if (supportsSuspend(d)) {
          await d.suspend(i);
          expect(await d.getPowerState(i)).toBe('suspended');
          await d.resume(i);
          expect(await d.getPowerState(i)).toBe('running');
        }
        if (supportsPowerControl(d)) {
          await d.powerOff(i, { timeoutMs: 5_000 });
          expect(await d.getPowerState(i)).toBe('shutdown');
          await d.powerOn(i);
          expect(await d.getPowerState(i)).toBe('running');
        }
        if (supportsConsoleOutput(d)) {
          expect(typeof (await d.getConsoleOutput(i))).toBe('string');
        }
        await d.destroy(i);
        expect(await d.getPowerState(i)).toBe('nostate');
      },
      timeout * 3,
    );
    it(
      'rejects a spawn whose signal is already aborted with its reason, and creates no guest',
      async () => {
        const i = instance();
        const reason = deadline('spawn');
        await expect(spawn(i, AbortSignal.abort(reason))).rejects.toBe(reason);
        await expectNoGuest(i);
      },
      timeout,
    );

    it(
      'rejects actions whose signal is already aborted with its reason, leaving the guest as it was',
      async () => {
        const d = subject.driver;
        const i = instance();
        await spawn(i);
        const reason = deadline('action');
        const aborted = AbortSignal.abort(reason);
        if (supportsPowerControl(d)) await expect(d.powerOff(i, { signal: aborted })).rejects.toBe(reason);
        if (supportsPause(d)) await expect(d.pause(i, { signal: aborted })).rejects.toBe(reason);
        if (supportsReboot(d)) await expect(d.reboot(i, 'hard', { signal: aborted })).rejects.toBe(reason);
        if (supportsSuspend(d)) await expect(d.suspend(i, { signal: aborted })).rejects.toBe(reason);
        await expect(d.destroy(i, { signal: aborted })).rejects.toBe(reason);
        expect(await d.getPowerState(i)).toBe('running');
        await d.destroy(i);
        await expectNoGuest(i);
      },
      timeout,
    );

    it(
      'stops a spawn aborted while it runs: it rejects with the reason (or had finished), and destroy leaves no guest',
      async () => {
        const outcomes: string[] = [];
        for (const point of abortPoints) {
          const i = instance();
          const reason = deadline(`spawn aborted at ${point}`);
          const controller = new AbortController();
          const running = outcome(spawn(i, controller.signal));
          abortAt(point, () => controller.abort(reason));
          const result = await running;
          if (point === 'sync') expect(result).toBe(reason);
          else if (result !== 'resolved') expect(result).toBe(reason);
          outcomes.push(result === reason ? 'aborted' : 'finished');
          await subject.driver.destroy(i);
          await expectNoGuest(i);
        }
        expect(outcomes[0]).toBe('aborted');
      },
      timeout * 3,
    );

    it(
      'fails a spawn of an image whose bytes do not match its sha256 with reschedule: false, creating no guest',
      async () => {
        const bad = await subject.images.register(
          {
            name: 'conformance-bad-checksum',
            diskFormat: subject.image.diskFormat,
            containerFormat: subject.image.containerFormat,
            properties: subject.image.properties,
            sha256: '0'.repeat(64),
          },
          { kind: 'bytes', bytes: new Uint8Array([1, 2, 3]) },
        );
        const i = instance({ imageId: bad.id });
        const err = await outcome(spawn(i, undefined, bad));
        expect(err).toMatchObject({ code: ErrorCode.Driver, details: { reschedule: false } });
        expect((err as Error).cause).toMatchObject({ code: ErrorCode.ImageChecksum });
        await expectNoGuest(i);
        await subject.images.remove(bad.id);
      },
      timeout,
    );

    const unsupported = options.unsupportedDiskFormat;
    if (unsupported) {
      it(
        `fails a spawn of a ${unsupported} image, which it cannot run, with reschedule: false, creating no guest`,
        async () => {
          const image = await subject.images.import(
            { name: 'conformance-unsupported', diskFormat: unsupported },
            { kind: 'bytes', bytes: new Uint8Array([1, 2, 3]) },
          );
          const i = instance({ imageId: image.id });
          const err = await outcome(spawn(i, undefined, image));
          expect(err).toMatchObject({
            code: ErrorCode.Driver,
            details: { reschedule: false, retryable: false },
          });
          await expectNoGuest(i);
          await subject.images.remove(image.id);
        },
        timeout,
      );
    }
  });
}
