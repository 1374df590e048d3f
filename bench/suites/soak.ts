import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCompute, type Instance, isNovaError } from '@nova-lfs/core';
import { FakeDriver, internalsOf } from '@nova-lfs/core/testing';
import { schedulerFactory } from '@nova-lfs/scheduler';
import { openSqliteStores } from '@nova-lfs/store-sql';
import { cpuProbe, percentile, printReport } from '../report.js';

/**
 * `pnpm bench soak [--seconds N] [--workers N] [--hosts N]`: a bounded soak (default 600 s) of a
 * mixed lifecycle (create, delete, reboot, power off and on, pause and unpause) on SQLite, with
 * driver hangs (ended by the engine's deadlines) and failures (spawns that fail and reschedule,
 * destroys that fail and leave ERROR instances) injected all along. Prints ops/s and p99 in the
 * first and the last minute (the baseline is the first minute of the same run), heap after
 * warm-up and at the end, and, once the load stops and everything is deleted, stuck tasks, leaked
 * claims and leaked quota. Targets (issue 11): heap growth < 10 %, 0 stuck, 0 leaked.
 */
export default async function soak(args: string[]): Promise<boolean> {
  const opt = (name: string, dflt: number): number => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const seconds = opt('seconds', 600);
  const workers = opt('workers', 16);
  const hostCount = opt('hosts', 20);
  const window = Math.min(60, Math.max(5, Math.floor(seconds / 5)));
  const dir = mkdtempSync(join(tmpdir(), 'nlfs-soak-'));
  const s = await openSqliteStores({
    dataDir: dir,
    quotaDefaults: { instances: 100_000, cores: 1_000_000, ramMb: 1_000_000_000 },
  });
  const drivers = Array.from(
    { length: hostCount },
    (_, i) => new FakeDriver({ hostname: `h${i}`, latencyMs: 1 }),
  );
  const timeouts = {
    spawn: 250,
    destroy: 250,
    power: 250,
    reboot: 250,
    pause: 250,
    rebuild: 250,
    snapshot: 250,
    read: 250,
    move: 250,
  };
  const compute = await createCompute({
    stores: s.stores,
    quota: s.quota,
    scheduler: schedulerFactory(),
    flavors: [{ id: 'm1', vcpus: 1, ramMb: 256 }],
    hosts: drivers.map((driver, i) => ({ id: `h${i}`, driver })),
    engine: { timeouts, powerOffTimeoutMs: 50, reconcileIntervalMs: 5_000 },
  });
  await compute.images.register(
    { id: 'img', name: 'img', diskFormat: 'raw', sha256: 'a'.repeat(64), sizeBytes: 1 },
    { kind: 'bytes', bytes: new Uint8Array([1]) },
  );
  const request = { name: 'soak', projectId: 'soak', userId: 'u', flavorId: 'm1', imageId: 'img' };

  let seed = 42;
  const random = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const live = new Map<string, Instance>();
  const errors: Record<string, number> = {};
  const injected = { hangs: 0, failures: 0 };
  // operation samples live in typed arrays (outside the JS heap), so the heap figures measure the
  // engine, not the benchmark's own bookkeeping
  const samples = new SampleLog();
  const began = Date.now();
  const until = began + seconds * 1000;

  const one = async (): Promise<void> => {
    const ids = [...live.keys()];
    const pick = ids.length ? live.get(ids[Math.floor(random() * ids.length)]!) : undefined;
    const r = random();
    if (!pick || (r < 0.35 && live.size < 300)) {
      const vms = await compute.create(request);
      for (const vm of vms) if (vm.vmState !== 'deleted') live.set(vm.id, vm);
      return;
    }
    const current = await compute.get(pick.id).catch(() => undefined);
    if (!current) {
      live.delete(pick.id);
      return;
    }
    if (r < 0.6 || current.vmState === 'error') {
      await compute.delete(current.id);
      live.delete(current.id);
      return;
    }
    if (current.vmState === 'active') {
      if (r < 0.75) await compute.reboot(current.id, r < 0.68 ? 'soft' : 'hard');
      else if (r < 0.87) await compute.pause(current.id);
      else await compute.powerOff(current.id);
    } else if (current.vmState === 'paused') await compute.unpause(current.id);
    else if (current.vmState === 'stopped') await compute.powerOn(current.id);
  };

  const worker = async (): Promise<void> => {
    while (Date.now() < until) {
      const t0 = performance.now();
      try {
        await one();
      } catch (e) {
        const code = isNovaError(e) ? e.code : 'UNTYPED';
        errors[code] = (errors[code] ?? 0) + 1;
      }
      samples.push(Date.now(), performance.now() - t0);
    }
  };

  // faults: every 200 ms one host hangs or fails its next call of some operation
  const faults = setInterval(() => {
    const d = drivers[Math.floor(random() * drivers.length)]!;
    const f = random();
    if (f < 0.2) {
      d.hangNext('spawn', f < 0.1 ? 'before' : 'after');
      injected.hangs++;
    } else if (f < 0.3) {
      d.hangNext('reboot', 'before');
      injected.hangs++;
    } else if (f < 0.6) {
      d.failNext('spawn', { times: 1, message: 'injected spawn failure' });
      injected.failures++;
    } else if (f < 0.7) {
      d.failNext('destroy', { times: 1, message: 'injected destroy failure' });
      injected.failures++;
    }
  }, 200);

  let heapStart = 0;
  const warm = setTimeout(
    () => {
      global.gc?.();
      heapStart = process.memoryUsage().heapUsed;
    },
    Math.min(60_000, (seconds * 1000) / 5),
  );
  const probeStart = cpuProbe();
  await Promise.all(Array.from({ length: workers }, () => worker()));
  clearInterval(faults);
  clearTimeout(warm);
  const probeEnd = cpuProbe();
  global.gc?.();
  const heapEnd = process.memoryUsage().heapUsed;

  // the load has stopped: nothing may be left in a task
  const deps = internalsOf(compute);
  const afterLoad = await deps.instances.list();
  const stuckTasks = afterLoad.filter((i) => i.taskState !== null).length;
  // delete everything (failures cleared), then count what is left
  for (const d of drivers) d.clearFailures();
  for (const i of afterLoad) await compute.delete(i.id).catch(() => undefined);
  await compute.reconcile();
  const instances = await deps.instances.list();
  const claims = await deps.claims.list();
  const byId = new Map(instances.map((i) => [i.id, i]));
  const leakedClaims = claims.filter((c) => byId.get(c.instanceId)?.hostId !== c.hostId).length;
  const usage = await s.quota.usage('soak');
  const leakedQuota =
    Math.abs(usage.inUse.instances - instances.length) +
    usage.reserved.instances +
    Math.abs(usage.inUse.cores - instances.length) +
    usage.reserved.cores;
  const pendingActions = (await deps.actions.listPending()).length;
  const guestsLeft = (await Promise.all(drivers.map((d) => d.listInstances()))).flat().length;
  await compute.close();
  await s.close();
  rmSync(dir, { recursive: true, force: true });

  const first = samples.between(began, began + window * 1000);
  const last = samples.between(until - window * 1000, until + 1);
  const p99 = (xs: Float64Array) => percentile(xs.sort(), 99);
  const opsFirst = first.length / window;
  const opsLast = last.length / window;
  const heapGrowthPercent = heapStart
    ? Math.round(((heapEnd - heapStart) / heapStart) * 1000) / 10
    : Number.NaN;

  return printReport(
    'soak',
    {
      store: 'SQLite (file, WAL, owned by the engine)',
      scheduler: '@nova-lfs/scheduler (spread)',
      driver: 'FakeDriver, 1 ms latency',
      hosts: hostCount,
      workers,
      seconds,
      windowSeconds: window,
      deadlinesMs: 250,
      faults: `every 200 ms one host: spawn or reboot hang (${injected.hangs}), spawn or destroy failure (${injected.failures})`,
      cpuProbeDuringMs: `${probeStart} at start / ${probeEnd} at end`,
      errorsByCode: JSON.stringify(errors),
      operations: samples.size,
    },
    {
      opsPerSecondFirstWindow: { value: Math.round(opsFirst), unit: 'ops/s' },
      opsPerSecondLastWindow: { value: Math.round(opsLast), unit: 'ops/s' },
      lastOverFirst: {
        value: Math.round((opsLast / opsFirst) * 100) / 100,
        unit: 'x (baseline: first window)',
      },
      p99FirstWindow: { value: Math.round(p99(first) * 10) / 10, unit: 'ms' },
      p99LastWindow: { value: Math.round(p99(last) * 10) / 10, unit: 'ms' },
      heapAfterWarmup: { value: Math.round(heapStart / 2 ** 20), unit: 'MiB' },
      heapAtEnd: { value: Math.round(heapEnd / 2 ** 20), unit: 'MiB' },
      heapGrowthPercent: { value: heapGrowthPercent, unit: '%', target: { op: '<=', value: 10 } },
      stuckTasks: { value: stuckTasks, unit: 'instances', target: { op: '<=', value: 0 } },
      leakedClaims: { value: leakedClaims, unit: 'claims', target: { op: '<=', value: 0 } },
      leakedQuota: { value: leakedQuota, unit: 'instances+cores', target: { op: '<=', value: 0 } },
      pendingActions: { value: pendingActions, unit: 'actions', target: { op: '<=', value: 0 } },
      guestsLeft: { value: guestsLeft, unit: 'guests', target: { op: '<=', value: 0 } },
    },
  );
}

/** Operation samples (end time, duration) in growing typed arrays. */
class SampleLog {
  private at = new Float64Array(1 << 16);
  private ms = new Float64Array(1 << 16);
  size = 0;

  push(at: number, ms: number): void {
    if (this.size === this.at.length) {
      const grow = (a: Float64Array) => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.at = grow(this.at);
      this.ms = grow(this.ms);
    }
    this.at[this.size] = at;
    this.ms[this.size++] = ms;
  }

  /** Durations of the operations that ended in [from, to). */
  between(from: number, to: number): Float64Array {
    const out: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.at[i]! >= from && this.at[i]! < to) out.push(this.ms[i]!);
    return Float64Array.from(out);
  }
}
