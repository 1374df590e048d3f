import {
  type ComputeEngine,
  createCompute,
  type Instance,
  type InstanceEvent,
  isNovaError,
  type StorageOption,
} from '@nova-lfs/core';
import type { Scheduler, SchedulerDeps } from '@nova-lfs/core/ports';
import { FakeDriver } from '@nova-lfs/core/testing';

/** What the quickstart did, for its test. */
export interface QuickstartSummary {
  readonly booted: number;
  readonly rescheduled: number;
  readonly quotaRejected: boolean;
  readonly finalInstances: number;
  readonly eventsSeen: number;
  readonly states: Record<string, string>;
  /** The database's action history, read back from storage after the delete. */
  readonly dbHistory: string[];
  /** Instances an earlier, interrupted run had left in durable storage (deleted first). */
  readonly leftovers: number;
}

/** Options of the quickstart. */
export interface QuickstartOptions {
  /** Where to write lines (default console.log). */
  readonly log?: (line: string) => void;
  /** Scheduler to use (default: `@nova-lfs/scheduler`, spread profile). */
  readonly scheduler?: (deps: SchedulerDeps) => Scheduler;
  /** Simulated hypervisor latency in ms (default 40). */
  readonly latencyMs?: number;
  /** Where the engine keeps its state (default `'sqlite'`: `$NOVA_LFS_DATA_DIR` or `./.nova-lfs`). */
  readonly storage?: StorageOption;
}

/**
 * The embedded demo: an engine over four FAKE hosts in two zones, a few instances booted and
 * driven through their lifecycle with every event printed, a build that fails on one host and is
 * rescheduled, a quota rejection, and a clean delete of everything.
 */
export async function runQuickstart(options: QuickstartOptions = {}): Promise<QuickstartSummary> {
  const log = options.log ?? ((line: string) => console.log(line));
  const latencyMs = options.latencyMs ?? 40;
  // the biggest host: the spread scheduler tries it first, and its first build fails
  const flaky = new FakeDriver({ hostname: 'rack1-a', latencyMs, vcpus: 16, ramMb: 32_768 });
  flaky.failNext('spawn', { times: 1, message: 'simulated libvirt error: cannot allocate hugepages' });
  const hosts = [
    { id: 'rack1-a', driver: flaky, availabilityZone: 'az-1' },
    {
      id: 'rack1-b',
      driver: new FakeDriver({ hostname: 'rack1-b', latencyMs, vcpus: 8, ramMb: 16_384 }),
      availabilityZone: 'az-1',
    },
    {
      id: 'rack2-a',
      driver: new FakeDriver({ hostname: 'rack2-a', latencyMs, vcpus: 8, ramMb: 16_384 }),
      availabilityZone: 'az-2',
    },
    {
      id: 'rack2-b',
      driver: new FakeDriver({ hostname: 'rack2-b', latencyMs, vcpus: 8, ramMb: 16_384 }),
      availabilityZone: 'az-2',
    },
  ];

  const storage = options.storage ?? 'sqlite';
  log('Nova LFS quickstart: an embedded compute engine over 4 FAKE hosts (no hypervisor needed)');
  const compute = await createCompute({
    storage,
    ...(options.scheduler ? { scheduler: options.scheduler } : {}),
    flavors: [
      { id: 'm1.small', name: 'm1.small', vcpus: 1, ramMb: 2048, diskGb: 20 },
      { id: 'm1.large', name: 'm1.large', vcpus: 4, ramMb: 8192, diskGb: 80 },
    ],
    quota: { defaults: { instances: 5, cores: 16, ramMb: 32_768 } },
    hosts,
  });
  log(`state: ${compute.storageLocation ?? 'in memory (gone when the process exits)'}\n`);
  await compute.images.import(
    { id: 'cirros', name: 'cirros-0.6', diskFormat: 'qcow2', properties: { architecture: 'x86_64' } },
    { kind: 'bytes', bytes: new TextEncoder().encode('pretend this is a qcow2 image') },
  );

  const leftovers = await compute.list({ projectId: 'demo' });
  if (leftovers.length > 0) {
    log(`0. An earlier run was interrupted: deleting the ${leftovers.length} instance(s) it left in storage`);
    await Promise.all(leftovers.map((i) => compute.delete(i.id)));
    log('');
  }
  const names = new Map<string, string>();
  let eventsSeen = 0;
  let rescheduled = 0;
  const started = Date.now();
  const sub = compute.events$.subscribe((e) => {
    eventsSeen++;
    if (e.type === 'instance.rescheduled') rescheduled++;
    const line = describe(e, names);
    if (line)
      log(
        `  ${String(Date.now() - started).padStart(5)} ms  ${(names.get(e.instanceId) ?? e.instanceId.slice(0, 8)).padEnd(8)} ${line}`,
      );
  });

  const project = { projectId: 'demo', userId: 'alice' };
  log('1. Boot three web servers together (all-or-nothing placement):');
  const pending = await compute.submit({
    name: 'web',
    ...project,
    flavorId: 'm1.small',
    imageId: 'cirros',
    count: 3,
  });
  for (const i of pending.instances) names.set(i.id, i.name);
  const web = await pending.done;
  log('');
  log('2. Boot a database in zone az-2:');
  const dbReq = await compute.submit({
    name: 'db',
    ...project,
    flavorId: 'm1.large',
    imageId: 'cirros',
    availabilityZone: 'az-2',
  });
  names.set(dbReq.instances[0]!.id, 'db');
  const [db] = await dbReq.done;
  log('');
  log('3. Drive the database through its lifecycle: stop, start, pause, unpause, hard reboot:');
  await compute.powerOff(db!.id);
  await compute.powerOn(db!.id);
  await compute.pause(db!.id);
  await compute.unpause(db!.id);
  await compute.reboot(db!.id, 'hard');
  log('');
  log('4. Ask for three more large instances: the project quota (5 instances, 16 cores) says no:');
  let quotaRejected = false;
  try {
    await compute.create({ name: 'batch', ...project, flavorId: 'm1.large', imageId: 'cirros', count: 3 });
  } catch (e) {
    if (!isNovaError(e, 'NLFS_QUOTA_EXCEEDED')) throw e;
    quotaRejected = true;
    log(`  refused: ${e.code} ${JSON.stringify(e.details)}`);
  }
  log('');
  const all = await compute.list({ projectId: 'demo' });
  log('5. Where everything runs:');
  const states: Record<string, string> = {};
  for (const i of all) {
    states[i.name] = `${i.vmState}@${i.hostId}`;
    log(
      `  ${i.name.padEnd(8)} ${i.vmState.padEnd(8)} host=${i.hostId} zone=${i.availabilityZone} flavor=${i.flavor.id}`,
    );
  }
  log('');
  log('6. Delete everything:');
  await Promise.all(all.map((i) => compute.delete(i.id)));
  const usage = await compute.quotas.get('demo');
  const left = (await compute.list()).length;
  log('');
  log(`Done: ${left} instances left, quota in use ${JSON.stringify(usage.inUse)}.`);
  const dbHistory = (await compute.listActions(db!.id)).map((a) => `${a.action}:${a.result}`);
  log(`The database's action history, as stored: ${dbHistory.join(', ')}`);
  sub.unsubscribe();
  await compute.close();
  return {
    dbHistory,
    leftovers: leftovers.length,
    booted: [...web, db].filter((i): i is Instance => i?.vmState === 'active').length,
    rescheduled,
    quotaRejected,
    finalInstances: left,
    eventsSeen,
    states,
  };
}

function describe(e: InstanceEvent, names: Map<string, string>): string | undefined {
  switch (e.type) {
    case 'instance.created':
      names.set(e.instanceId, e.instance.name);
      return `created (flavor ${e.instance.flavor.id})`;
    case 'instance.scheduled':
      return `scheduled on ${e.hostId}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`;
    case 'instance.state':
      return `${e.vmState}${e.taskState ? `/${e.taskState}` : ''}  power=${e.powerState}`;
    case 'instance.fault':
      return `FAULT on ${e.hostId ?? '-'}: ${e.fault.message}`;
    case 'instance.rescheduled':
      return `rescheduled ${e.fromHostId} -> ${e.toHostId}`;
    case 'instance.deleted':
      return 'deleted';
    case 'instance.orphan':
      return `orphan on ${e.hostId}`;
    default:
      return undefined;
  }
}

export type { ComputeEngine };
