import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCompute, type Image, LocalImageService } from '@nova-lfs/core';
import { makeBusyboxRootfs } from '@nova-lfs/driver-docker/testing';
import { DEFAULT_BOOT_SCRIPT, detectCgroupVersion, LxcDriver } from '@nova-lfs/driver-lxc';
import { tracePhases } from '../lxc-phases.js';
import { type Figure, percentile, printReport } from '../report.js';

const run = promisify(execFile);

type Mode = 'copy' | 'overlay';

/** What one mode measured, in ms, sorted. */
interface ModeResult {
  readonly engine: number[];
  /** Raw: make the container (directory, config, boot script, rootfs) + `lxc-start -d` + `lxc-wait`. */
  readonly raw: number[];
  /** The `lxc-start -d` + `lxc-wait -s RUNNING` part of the raw boots alone. */
  readonly rawStart: number[];
  /** The raw boots without their `lxc-wait` (dir, config, boot script, rootfs, `lxc-start -d`). */
  readonly rawNoWait: number[];
  /** engine / raw of each back-to-back pair. */
  readonly pairRatios: number[];
  /** The per-phase breakdown of engine boots (`--phases`). */
  readonly phases?: Array<readonly [phase: string, medianMs: number, perBoot: number]>;
}

/**
 * `pnpm bench lxc [--rounds N] [--mode copy|overlay|both] [--phases]`: instance boot through the engine
 * (`compute.create` -> ACTIVE, one `LxcDriver` host, in-memory storage) against booting the same
 * container by hand in the same run, alternating (and alternating which goes first): the raw boot
 * writes the config the driver wrote for the engine's first instance (uuid and host tag replaced)
 * and its boot script, makes the rootfs as the driver does (`copy`: GNU tar unpack of the image;
 * `overlay`: an empty upper over the driver's already unpacked base), then `lxc-start -d` and
 * `lxc-wait -s RUNNING`. Both rootfs modes by default, each in its own temporary lxcpath; every
 * container is removed. `--phases` then times 20 more engine boots per mode phase by phase
 * ({@link tracePhases}) and prints the breakdown. Needs the `lxc-*` tools and root.
 */
export default async function lxcBench(args: string[]): Promise<boolean> {
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const rounds = Number(opt('rounds') ?? 40);
  const warmUp = 5;
  const phases = args.includes('--phases');
  const modeArg = opt('mode') ?? 'both';
  const modes: Mode[] = modeArg === 'both' ? ['copy', 'overlay'] : [modeArg as Mode];
  if (modes.some((m) => m !== 'copy' && m !== 'overlay'))
    throw new Error(`--mode ${modeArg}: copy, overlay or both`);
  if (process.getuid?.() !== 0) throw new Error('pnpm bench lxc makes privileged containers: run it as root');
  const { stdout: lxcVersion } = await run('lxc-start', ['--version']);
  const cgroup = await detectCgroupVersion();

  const root = mkdtempSync(join(tmpdir(), 'nlfs-bench-lxc-'));
  const results = new Map<Mode, ModeResult>();
  let left = 0;
  let image: Image | undefined;
  try {
    await makeBusyboxRootfs(join(root, 'busybox.tar'));
    const images = new LocalImageService(join(root, 'images'));
    image = await images.import(
      { id: 'busybox', name: 'busybox', diskFormat: 'tar', properties: { hypervisorType: 'lxc' } },
      { kind: 'file', path: join(root, 'busybox.tar') },
    );
    const tarball = (await images.acquire('busybox')).path;
    for (const mode of modes) {
      const lxcPath = join(root, `lxc-${mode}`);
      try {
        results.set(mode, await measureMode(mode, lxcPath, images, tarball, { rounds, warmUp, phases }));
      } finally {
        left += await removeAll(lxcPath);
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }

  const ms = (n: number) => Math.round(n * 10) / 10;
  const figures: Record<string, Figure> = {};
  for (const [mode, r] of results) {
    const suffix = mode === 'copy' ? '' : 'Overlay';
    const engine = percentile(r.engine, 50);
    const raw = percentile(r.raw, 50);
    const start = percentile(r.rawStart, 50);
    const noWait = percentile(r.rawNoWait, 50);
    figures[`engineBootMedian${suffix}`] = { value: ms(engine), unit: 'ms' };
    figures[`rawBootMedian${suffix}`] = { value: ms(raw), unit: 'ms' };
    figures[`bootRatio${suffix}`] = {
      value: Math.round((engine / raw) * 1000) / 1000,
      unit: 'x',
      target: { op: '<=', value: 1.1 },
    };
    figures[`engineBootP90${suffix}`] = { value: ms(percentile(r.engine, 90)), unit: 'ms' };
    figures[`rawBootP90${suffix}`] = { value: ms(percentile(r.raw, 90)), unit: 'ms' };
    figures[`rawStartOnlyMedian${suffix}`] = { value: ms(start), unit: 'ms' };
    figures[`engineVsStartOnly${suffix}`] = { value: Math.round((engine / start) * 100) / 100, unit: 'x' };
    figures[`rawNoWaitMedian${suffix}`] = { value: ms(noWait), unit: 'ms' };
    figures[`engineVsRawNoWait${suffix}`] = { value: Math.round((engine / noWait) * 1000) / 1000, unit: 'x' };
    figures[`pairRatioMedian${suffix}`] = {
      value: Math.round(percentile(r.pairRatios, 50) * 1000) / 1000,
      unit: 'x',
    };
    figures[`pairRatioP90${suffix}`] = {
      value: Math.round(percentile(r.pairRatios, 90) * 1000) / 1000,
      unit: 'x',
    };
  }
  figures.containersLeft = { value: left, unit: 'containers', target: { op: '<=', value: 0 } };

  for (const [mode, r] of results) {
    if (!r.phases) continue;
    console.log(`\nengine boot phases (${mode}, median ms of 20 traced boots after the measured rounds):`);
    for (const [phase, median, perBoot] of r.phases)
      console.log(
        `  ${phase.padEnd(52)} ${median.toFixed(2).padStart(7)}${perBoot === 1 ? '' : `  (${perBoot}x per boot)`}`,
      );
  }

  return printReport(
    'lxc',
    {
      lxc: lxcVersion.trim(),
      cgroup: cgroup ?? 'none found',
      image: `busybox-static rootfs tarball, ${image?.sizeBytes ?? '?'} bytes, imported offline`,
      container: 'driver config: no network, 1 vCPU, 64 MiB, pids 1024, seccomp, boot script as init',
      modes: modes.join(', ') + (modes.includes('copy') ? " ('copy' is the driver's default)" : ''),
      lxcPath: `temporary, under ${tmpdir()} (ext4 here)`,
      rounds: `${rounds} boots per path per mode, in back-to-back pairs, after ${warmUp} warm-up pairs`,
      measure:
        'median ms: engine compute.create -> ACTIVE vs raw (dir + same config + boot script + rootfs as the driver makes it + lxc-start -d + lxc-wait -s RUNNING), alternating which goes first; bootRatio = engine median / raw median; pairRatio = engine/raw of each pair; rawStartOnly = the lxc-start + lxc-wait part alone; rawNoWait = the raw boot without its lxc-wait (the driver relies on lxc-start -d, which returns once RUNNING)',
      loadAverage1m: loadavg()[0]!.toFixed(2),
    },
    figures,
  );
}

async function measureMode(
  mode: Mode,
  lxcPath: string,
  images: LocalImageService,
  tarball: string,
  { rounds, warmUp, phases }: { rounds: number; warmUp: number; phases: boolean },
): Promise<ModeResult> {
  const hostId = `bench-lxc-${mode}`;
  const driver = new LxcDriver({ hostId, lxcPath, rootfs: mode, stopTimeoutSeconds: 1 });
  const compute = await createCompute({
    storage: 'memory',
    images,
    flavors: [{ id: 'c1', vcpus: 1, ramMb: 64 }],
    quota: { defaults: { instances: -1, cores: -1, ramMb: -1 } },
    hosts: [{ id: hostId, driver, allocationRatios: { VCPU: 64 } }],
  });
  const req = { name: 'bench', projectId: 'bench', userId: 'bench', flavorId: 'c1', imageId: 'busybox' };
  try {
    const engineBoot = async (): Promise<{ ms: number; id: string }> => {
      const t0 = performance.now();
      const [vm] = await compute.create(req);
      const ms = performance.now() - t0;
      if (vm!.vmState !== 'active') throw new Error(`engine boot failed (${mode}): ${vm!.fault?.message}`);
      return { ms, id: vm!.id };
    };

    // The config the driver wrote, as the template of the raw containers (the overlay base it
    // points at is the driver's, unpacked by this first spawn).
    const first = await engineBoot();
    const template = await readFile(join(lxcPath, `nova-${first.id}`, 'config'), 'utf8');
    if (!template.includes(`NOVA_LFS_HOST=${hostId}`)) throw new Error('no host tag in the driver config');
    await compute.delete(first.id);

    const rawBoot = async (): Promise<{ ms: number; startMs: number; noWaitMs: number; name: string }> => {
      const uuid = randomUUID();
      const name = `nova-${uuid}`;
      const dir = join(lxcPath, name);
      const config = template
        .replaceAll(first.id, uuid)
        .replace(`NOVA_LFS_HOST=${hostId}`, 'NOVA_LFS_HOST=bench-raw');
      const t0 = performance.now();
      await mkdir(dir, { mode: 0o750 });
      await writeFile(join(dir, 'config'), config, { mode: 0o640 });
      await writeFile(join(dir, 'boot.sh'), DEFAULT_BOOT_SCRIPT, { mode: 0o644 });
      if (mode === 'overlay') await mkdir(join(dir, 'upper'), { mode: 0o755 });
      else {
        await mkdir(join(dir, 'rootfs'), { mode: 0o755 });
        await run('tar', [
          '--extract',
          '--file',
          tarball,
          '--directory',
          join(dir, 'rootfs'),
          '--numeric-owner',
          '--same-permissions',
        ]);
      }
      const t1 = performance.now();
      await run('lxc-start', ['-P', lxcPath, '-n', name, '-d']);
      const tStarted = performance.now();
      await run('lxc-wait', ['-P', lxcPath, '-n', name, '-s', 'RUNNING', '-t', '30']);
      const t2 = performance.now();
      const { stdout } = await run('lxc-info', ['-P', lxcPath, '-n', name, '-s', '-H']);
      if (stdout.trim() !== 'RUNNING') throw new Error(`raw container ${name} is ${stdout.trim()}`);
      return { ms: t2 - t0, startMs: t2 - t1, noWaitMs: tStarted - t0, name };
    };
    const rawRemove = async (name: string): Promise<void> => {
      await run('lxc-stop', ['-P', lxcPath, '-n', name, '-k']);
      await rm(join(lxcPath, name), { recursive: true, force: true });
    };

    for (let i = 0; i < warmUp; i++) {
      await compute.delete((await engineBoot()).id);
      await rawRemove((await rawBoot()).name);
    }
    const engine: number[] = [];
    const raw: number[] = [];
    const rawStart: number[] = [];
    const rawNoWait: number[] = [];
    const pairRatios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const rawFirst = r % 2 === 1;
      const a = rawFirst ? await rawBoot() : undefined;
      const e = await engineBoot();
      const b = a ?? (await rawBoot());
      engine.push(e.ms);
      raw.push(b.ms);
      rawStart.push(b.startMs);
      rawNoWait.push(b.noWaitMs);
      pairRatios.push(e.ms / b.ms);
      await compute.delete(e.id);
      await rawRemove(b.name);
    }
    const sort = (xs: number[]) => xs.sort((x, y) => x - y);
    const traced = phases
      ? await tracePhases(
          driver,
          images,
          { create: async () => (await engineBoot()).id, remove: (id) => compute.delete(id) },
          20,
        )
      : undefined;
    return {
      engine: sort(engine),
      raw: sort(raw),
      rawStart: sort(rawStart),
      rawNoWait: sort(rawNoWait),
      pairRatios: sort(pairRatios),
      ...(traced ? { phases: traced } : {}),
    };
  } finally {
    await compute.close();
    await driver.close();
  }
}

/**
 * Stops and removes every container in the bench's own lxcpath (and its overlay bases); returns
 * how many containers were still there (0 when every boot was cleaned up).
 */
async function removeAll(lxcPath: string): Promise<number> {
  let left = 0;
  for (const name of await readdir(lxcPath).catch(() => [] as string[])) {
    if (!name.startsWith('nova-')) continue;
    left++;
    await run('lxc-stop', ['-P', lxcPath, '-n', name, '-k']).catch(() => undefined);
    await rm(join(lxcPath, name), { recursive: true, force: true });
  }
  await rm(lxcPath, { recursive: true, force: true });
  return left;
}
