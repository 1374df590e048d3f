import {
  existsSync,
  type FSWatcher,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { DriverError } from '../errors.js';
import type { Flavor } from '../model/flavor.js';
import type { Instance } from '../model/instance.js';
import { abortableDelay } from '../ports/abort-helpers.js';
import type { ComputeDriver, DriverCallOptions } from '../ports/driver.js';
import { throwIfCallAborted } from '../ports/driver.js';
import type {
  FinishMigrationRequest,
  ForceCompleteMode,
  LiveMigrationOptions,
  LiveMigrationResult,
  MigratedDisks,
  MigrationTarget,
  RescueRequest,
} from '../ports/driver-moves.js';
import { pluggedDevices } from './fake-devices.js';
import type { FakeGuest, FakeOperation } from './fake-driver.js';

/** What {@link FakeMoves} reaches of its fake host. */
export interface FakeHostState {
  readonly guests: Map<string, FakeGuest>;
  /** Copies kept for a revert. */
  readonly kept: Map<string, FakeGuest>;
  enter(op: FakeOperation, instance?: Instance, call?: DriverCallOptions): Promise<void>;
  persist(): void;
  require(instance: Instance, op: string): FakeGuest;
  /** The fake a target names, in this process or not. @throws DriverError for an unknown one */
  peer(target: MigrationTarget): FakePeer;
  /**
   * Where other processes hand guests live-migrated to this host (set when the host persists its
   * guests to a state file: `<statePath>.incoming`).
   */
  readonly handoffDir?: string;
}

/** The destination of a live migration as its source sees it. */
export interface FakePeer {
  /** Whether the destination prepared to receive the instance. */
  prepared(instanceId: string): boolean;
  /** Hands the guest over: it runs on the destination from now on. */
  receive(instanceId: string, guest: FakeGuest): void;
  /** Whether this is the fake with the hand-off directory `dir`. */
  handsOffTo(dir: string | undefined): boolean;
}

/**
 * A destination fake in another process (an agent's), reached through its hand-off directory: it
 * prepared by writing `<instance>.prepared` there, and adopts `<instance>.json` on its next call.
 */
export class HandoffPeer implements FakePeer {
  constructor(readonly dir: string) {}
  prepared(instanceId: string): boolean {
    return existsSync(join(this.dir, `${instanceId}.prepared`));
  }
  receive(instanceId: string, guest: FakeGuest): void {
    const tmp = join(this.dir, `${instanceId}.json.tmp`);
    writeFileSync(tmp, JSON.stringify(guest));
    renameSync(tmp, join(this.dir, `${instanceId}.json`));
  }
  handsOffTo(dir: string | undefined): boolean {
    return dir === this.dir;
  }
}

interface RunningMigration {
  aborted: boolean;
  force: ForceCompleteMode | undefined;
  wake: (() => void) | undefined;
}

/**
 * The FAKE driver's moves, as a hypervisor does them: a resize or cold migration powers the source
 * guest off and keeps it (listed as shut off) until the confirm, the destination (possibly the same
 * host) gets a new guest with the new flavor; a revert drops the new one and brings the kept copy
 * back. A live migration reports progress while it runs, converges after a set time (or never), can
 * be aborted (the guest stays on the source) or forced to complete (post-copy or more downtime),
 * and moves the guest to the destination fake only once complete.
 */
export class FakeMoves implements FakePeer {
  private readonly jobs = new Map<string, RunningMigration>();
  /** Guests this host prepared to receive by live migration. */
  private readonly incoming = new Set<string>();
  /** Watches the hand-off directory, so a guest handed over is adopted at once (as a hypervisor shows it). */
  private watcher: FSWatcher | undefined;
  /** The hand-off directory was read once since this process started (hand-offs prepared before a restart are known). */
  private scanned = false;

  constructor(
    private readonly driver: ComputeDriver,
    private readonly host: FakeHostState,
    private readonly live: { readonly tickMs?: number; readonly convergeAfterMs?: number | 'never' } = {},
  ) {}

  /** Stops watching the hand-off directory (the fake's `close`). */
  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Instance ids of the live migrations running from this host. */
  get running(): string[] {
    return [...this.jobs.keys()];
  }

  private target(): MigrationTarget {
    return {
      hostId: this.driver.kind,
      driverKind: this.driver.kind,
      sameHost: false,
      params: {
        fakeId: (this.driver as { fakeId?: string }).fakeId ?? '',
        ...(this.host.handoffDir ? { handoffDir: this.host.handoffDir } : {}),
      },
    };
  }

  /** See {@link FakePeer.prepared}. */
  prepared(instanceId: string): boolean {
    return this.incoming.has(instanceId);
  }

  /** See {@link FakePeer.handsOffTo}. */
  handsOffTo(dir: string | undefined): boolean {
    return dir !== undefined && dir === this.host.handoffDir;
  }

  /**
   * Adopts the guests other processes live-migrated here (their hand-off files); called before
   * every operation of the fake (a source may answer before the watcher reports its file). The
   * directory is read only while a hand-off can still arrive: once after the process starts
   * (migrations prepared before a restart count as incoming again), then while a prepared
   * migration has not handed its guest over. Without a hand-off directory, nothing to do.
   */
  adoptHandoffs(): void {
    const dir = this.host.handoffDir;
    if (!dir || (this.scanned && this.incoming.size === 0)) return;
    const first = !this.scanned;
    this.scanned = true;
    if (!existsSync(dir)) return;
    let adopted = false;
    const files = readdirSync(dir);
    if (first) {
      for (const file of files)
        if (file.endsWith('.prepared')) this.incoming.add(file.slice(0, -'.prepared'.length));
    }
    for (const file of files) {
      if (!file.endsWith('.json')) continue;
      const instanceId = file.slice(0, -'.json'.length);
      let guest: FakeGuest;
      try {
        guest = JSON.parse(readFileSync(join(dir, file), 'utf8')) as FakeGuest;
      } catch {
        continue; // adopted by a call running beside this one
      }
      this.host.guests.set(instanceId, guest);
      this.incoming.delete(instanceId);
      rmSync(join(dir, file), { force: true });
      rmSync(join(dir, `${instanceId}.prepared`), { force: true });
      adopted = true;
    }
    if (adopted) this.host.persist();
  }

  private error(op: string, instance: Instance, message: string): DriverError {
    return new DriverError({ driver: this.driver.kind, operation: op, instanceId: instance.id }, message);
  }

  // ---- cold migration and resize ----------------------------------------------------------------

  async prepareColdMigrationTarget(
    instance: Instance,
    _flavor: Flavor,
    options?: DriverCallOptions,
  ): Promise<MigrationTarget> {
    await this.host.enter('prepareColdMigrationTarget', instance, options);
    return this.target();
  }

  async migrateDisksAndPowerOff(
    instance: Instance,
    target: MigrationTarget,
    options?: DriverCallOptions,
  ): Promise<MigratedDisks> {
    await this.host.enter('migrateDisksAndPowerOff', instance, options);
    throwIfCallAborted(options);
    const g = this.host.require(instance, 'migrateDisksAndPowerOff');
    this.host.peer(target); // the destination must exist
    g.powerState = 'shutdown';
    this.host.guests.delete(instance.id);
    this.host.kept.set(instance.id, g);
    this.host.persist();
    return { params: { imageId: g.imageId, boots: String(g.boots), projectId: g.projectId } };
  }

  async finishMigration(request: FinishMigrationRequest): Promise<void> {
    const { instance, flavor, disks } = request;
    await this.host.enter('finishMigration', instance, request);
    throwIfCallAborted(request);
    this.host.guests.set(instance.id, {
      powerState: request.powerOn ? 'running' : 'shutdown',
      projectId: disks.params.projectId ?? instance.projectId,
      imageId: disks.params.imageId ?? instance.imageId,
      boots: Number(disks.params.boots ?? '0') + (request.powerOn ? 1 : 0),
      vcpus: flavor.vcpus,
      ramMb: flavor.ramMb,
      ...pluggedDevices(request.volumes, instance.ports ?? []),
    });
    this.host.persist();
  }

  async confirmMigration(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.host.enter('confirmMigration', instance, options);
    if (this.host.kept.delete(instance.id)) this.host.persist();
  }

  async revertMigrationOnDestination(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.host.enter('revertMigrationOnDestination', instance, options);
    // the copy kept for the revert (same host) is not touched
    if (this.host.guests.delete(instance.id)) this.host.persist();
  }

  async finishRevertMigration(
    instance: Instance,
    powerOn: boolean,
    options?: DriverCallOptions,
  ): Promise<void> {
    await this.host.enter('finishRevertMigration', instance, options);
    const g = this.host.kept.get(instance.id) ?? this.host.guests.get(instance.id);
    if (!g) throw this.error('finishRevertMigration', instance, 'no copy kept for the revert');
    this.host.kept.delete(instance.id);
    g.powerState = powerOn ? 'running' : 'shutdown';
    if (powerOn) g.boots++;
    this.host.guests.set(instance.id, g);
    this.host.persist();
  }

  // ---- live migration ---------------------------------------------------------------------------

  async prepareLiveMigrationTarget(
    instance: Instance,
    options?: DriverCallOptions,
  ): Promise<MigrationTarget> {
    await this.host.enter('prepareLiveMigrationTarget', instance, options);
    this.incoming.add(instance.id);
    const dir = this.host.handoffDir;
    if (dir) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${instance.id}.prepared`), '');
      this.watcher ??= watch(dir, () => this.adoptHandoffs());
    }
    return this.target();
  }

  async checkLiveMigration(
    instance: Instance,
    target: MigrationTarget,
    options?: DriverCallOptions,
  ): Promise<void> {
    await this.host.enter('checkLiveMigration', instance, options);
    const g = this.host.guests.get(instance.id);
    if (!g || (g.powerState !== 'running' && g.powerState !== 'paused')) {
      throw this.error('checkLiveMigration', instance, 'guest is not running');
    }
    const peer = this.host.peer(target);
    if (peer === this || peer.handsOffTo(this.host.handoffDir))
      throw this.error('checkLiveMigration', instance, 'destination is the source');
    if (!peer.prepared(instance.id)) {
      throw this.error('checkLiveMigration', instance, 'destination was not prepared');
    }
  }

  async liveMigrate(
    instance: Instance,
    target: MigrationTarget,
    options: LiveMigrationOptions = {},
  ): Promise<LiveMigrationResult> {
    await this.host.enter('liveMigrate', instance, options);
    const g = this.host.require(instance, 'liveMigrate');
    const peer = this.host.peer(target);
    if (this.jobs.has(instance.id)) throw this.error('liveMigrate', instance, 'a migration is running');
    const job: RunningMigration = { aborted: false, force: undefined, wake: undefined };
    this.jobs.set(instance.id, job);
    const started = Date.now();
    const tick = this.live.tickMs ?? 5;
    const converge = this.live.convergeAfterMs ?? 20;
    const total = (g.ramMb ?? instance.flavor.ramMb) * 1024 * 1024;
    try {
      for (;;) {
        throwIfCallAborted(options);
        if (job.aborted) throw this.error('liveMigrate', instance, 'migration aborted');
        const elapsedMs = Date.now() - started;
        const done = job.force !== undefined || (converge !== 'never' && elapsedMs >= converge);
        const postCopy = job.force?.kind === 'postcopy';
        const remaining = done ? 0 : Math.max(1, Math.round(total / (1 + elapsedMs / tick)));
        options.onProgress?.({
          phase: postCopy ? 'postcopy' : 'precopy',
          elapsedMs,
          dataTotalBytes: total,
          dataProcessedBytes: total - remaining,
          dataRemainingBytes: remaining,
          dirtyRateBytesPerSecond: converge === 'never' ? total : 0,
          downtimeMs: options.maxDowntimeMs ?? 300,
        });
        if (done) {
          this.host.guests.delete(instance.id);
          peer.receive(instance.id, g);
          this.host.persist();
          return { totalMs: Date.now() - started, downtimeMs: postCopy ? 1 : 30, postCopy };
        }
        await new Promise<void>((resolve, reject) => {
          job.wake = resolve;
          abortableDelay(tick, options.signal).then(resolve, reject);
        });
      }
    } finally {
      this.jobs.delete(instance.id);
    }
  }

  /** The destination side of a completed live migration: the guest runs here now. */
  receive(instanceId: string, guest: FakeGuest): void {
    this.incoming.delete(instanceId);
    this.host.guests.set(instanceId, guest);
    this.host.persist();
  }

  async abortLiveMigration(instance: Instance): Promise<void> {
    const job = this.jobs.get(instance.id);
    if (!job) throw this.error('abortLiveMigration', instance, 'no migration running');
    job.aborted = true;
    job.wake?.();
  }

  async forceCompleteLiveMigration(instance: Instance, mode: ForceCompleteMode): Promise<void> {
    const job = this.jobs.get(instance.id);
    if (!job) throw this.error('forceCompleteLiveMigration', instance, 'no migration running');
    job.force = mode;
    job.wake?.();
  }

  async rollbackLiveMigrationTarget(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.host.enter('rollbackLiveMigrationTarget', instance, options);
    this.incoming.delete(instance.id);
    if (this.host.handoffDir) rmSync(join(this.host.handoffDir, `${instance.id}.prepared`), { force: true });
  }

  // ---- rescue -----------------------------------------------------------------------------------

  async rescue(request: RescueRequest): Promise<void> {
    await this.host.enter('rescue', request.instance, request);
    throwIfCallAborted(request);
    const g = this.host.require(request.instance, 'rescue');
    g.rescueImageId = request.rescueImage.id;
    g.powerState = 'running';
    g.boots++;
    this.host.persist();
  }

  async unrescue(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.host.enter('unrescue', instance, options);
    const g = this.host.require(instance, 'unrescue');
    delete g.rescueImageId;
    g.powerState = 'running';
    g.boots++;
    this.host.persist();
  }
}
