import { z } from 'zod';
import {
  CapabilityUnsupportedError,
  EngineClosedError,
  MigrationPreCheckError,
  NotFoundError,
} from '../errors.js';
import type { RequestContext } from '../model/action.js';
import type { Instance } from '../model/instance.js';
import type { MigrationProgress } from '../model/migration.js';
import { idSchema } from '../model/names.js';
import { outcomeOf } from '../model/transitions.js';
import { parseInput } from '../model/validation.js';
import type { ComputeDriver } from '../ports/driver.js';
import {
  type ForceCompleteMode,
  type LiveMigratable,
  type LiveMigrationProgress,
  type LiveMigrationResult,
  type MigrationTarget,
  supportsLiveMigration,
} from '../ports/driver-moves.js';
import type { Selection } from '../ports/scheduler.js';
import type { TaskControl } from './deadline.js';
import { type EngineContext, faultOf } from './engine-context.js';
import { claimExisting, placeExisting } from './instance-placement.js';
import { MigrationLog } from './migration-log.js';
import {
  callOf,
  conflictOf,
  driverFailure,
  endTask,
  instanceFor,
  type TakenTask,
  takeTask,
} from './move-task.js';

/** Options of `compute.liveMigrate`. */
export interface LiveMigrateOptions {
  /** Destination host; the scheduler picks one when omitted. */
  readonly host?: string;
  /** Downtime allowed at switch-over to start with (ms). */
  readonly maxDowntimeMs?: number;
  /** Bandwidth cap of the migration stream (MiB/s). */
  readonly bandwidthMiBps?: number;
  /**
   * Whether the migration may switch to post-copy (by `forceCompleteMigration` or the completion
   * policy); when not, forcing raises the downtime instead. Default true.
   */
  readonly allowPostCopy?: boolean;
}

const optionsSchema = z.strictObject({
  host: idSchema.optional(),
  maxDowntimeMs: z.int().min(1).max(600_000).optional(),
  bandwidthMiBps: z.int().min(1).max(1_000_000).optional(),
  allowPostCopy: z.boolean().optional(),
});

type Live = ComputeDriver & LiveMigratable;

/** A live migration running in this process. */
interface Running {
  readonly source: Live;
  readonly instance: Instance;
  readonly allowPostCopy: boolean;
  readonly task: TaskControl;
  forced: boolean;
  /** `abort` was asked for. */
  aborted: boolean;
}

/** Progress updates stored and published at most this often (the driver reports more). */
const PROGRESS_EVERY_MS = 250;

/**
 * Live migration (Nova's `os-migrateLive`) through the drivers' {@link LiveMigratable} port: task
 * `migrating` (vm state kept) and a `live-migration` action in one unit; the destination placed
 * with a create's filters and claims (a named host claimed if it fits; hosts of another driver kind
 * or without the capability are no destination); the destination's driver prepares, the source's
 * checks (`checkLiveMigration`: a refusal ends it with MigrationPreCheckError and its reason,
 * nothing held); the guest moves while progress is stored on the migration record and published as
 * `instance.migration` events; then one unit moves the record to the destination and the source's
 * claim goes. Claims on both hosts are held while it runs. `abort` leaves the guest running on the
 * source (the destination cleaned, its claim released, the record `cancelled`); `forceComplete`
 * switches to post-copy (or raises the downtime); past `liveMigrationCompletionTimeoutMs` the
 * engine forces it by itself, so a migration never runs forever.
 */
export class LiveMigrationFlow {
  private readonly log: MigrationLog;
  private readonly running = new Map<string, Running>();

  constructor(private readonly ctx: EngineContext) {
    this.log = new MigrationLog(ctx);
  }

  /**
   * @throws ValidationError (field named); NotFoundError (instance, host, image); InvalidStateError;
   * InstanceLockedError; CapabilityUnsupportedError (`liveMigration`); MigrationPreCheckError (own
   * host, another driver kind, no room, the source's check); NoValidHostError; DriverError (the
   * guest stays on the source, nothing held)
   */
  async start(id: string, input: LiveMigrateOptions = {}, request?: RequestContext): Promise<Instance> {
    if (this.ctx.closed) throw new EngineClosedError('live-migration');
    const options = parseInput(optionsSchema, input);
    const { deps } = this.ctx;
    const instance = await instanceFor(this.ctx, id, 'live-migration', request);
    if (!instance.hostId) throw conflictOf('live-migration', instance);
    const source = this.live(instance.hostId);
    if (options.host !== undefined) {
      if (options.host === instance.hostId) {
        throw new MigrationPreCheckError(id, 'the destination is the host it runs on', options.host);
      }
      if (!deps.registry.has(options.host)) throw new NotFoundError('host', options.host, 'host');
      this.sameKind(id, source, options.host);
    }
    const image = await deps.images.get(instance.imageId);
    if (!image) throw new NotFoundError('image', instance.imageId, 'imageId');
    const taken = await takeTask(this.ctx, instance, 'live-migration', request);
    try {
      return await this.run(taken, source, image, options);
    } finally {
      taken.done();
    }
  }

  /**
   * Aborts the running live migration of `id`: the guest keeps running on the source.
   * @throws InvalidStateError when no live migration of it runs in this process
   */
  async abort(id: string): Promise<void> {
    const run = await this.runningOf(id);
    run.aborted = true;
    // a job the driver has not started yet is stopped through the task's signal
    await run.source.abortLiveMigration(run.instance).catch((e) => run.task.abort(e));
  }

  /**
   * Finishes the running live migration of `id` now: post-copy where allowed, else with the
   * downtime raised to `liveMigrationForcedDowntimeMs`.
   * @throws InvalidStateError when no live migration of it runs in this process
   */
  async forceComplete(id: string): Promise<void> {
    const run = await this.runningOf(id);
    await this.force(run);
  }

  private async runningOf(id: string): Promise<Running> {
    const run = this.running.get(id);
    if (run) return run;
    const instance = await this.ctx.deps.instances.get(id);
    if (!instance) throw new NotFoundError('instance', id, 'id');
    throw conflictOf('live-migration', instance);
  }

  private async force(run: Running): Promise<void> {
    run.forced = true;
    const mode: ForceCompleteMode = run.allowPostCopy
      ? { kind: 'postcopy' }
      : { kind: 'downtime', downtimeMs: this.ctx.deps.options.liveMigrationForcedDowntimeMs };
    await run.source.forceCompleteLiveMigration(run.instance, mode);
  }

  private live(hostId: string): Live {
    const driver = this.ctx.deps.registry.driverFor(hostId);
    if (!supportsLiveMigration(driver))
      throw new CapabilityUnsupportedError('liveMigration', driver.kind, hostId);
    return driver;
  }

  private sameKind(instanceId: string, source: ComputeDriver, destHostId: string): Live {
    const dest = this.ctx.deps.registry.driverFor(destHostId);
    if (dest.kind !== source.kind) {
      throw new MigrationPreCheckError(
        instanceId,
        `the destination's driver is ${dest.kind}, the source's ${source.kind}`,
        destHostId,
      );
    }
    if (!supportsLiveMigration(dest))
      throw new CapabilityUnsupportedError('liveMigration', dest.kind, destHostId);
    return dest;
  }

  private async place(
    instance: Instance,
    image: import('../model/image.js').Image,
    requestId: string,
    host: string | undefined,
  ): Promise<Selection> {
    const { registry } = this.ctx.deps;
    const own = instance.hostId!;
    const kind = registry.driverFor(own).kind;
    const unfit = registry
      .list()
      .filter((b) => b.driver.kind !== kind || !supportsLiveMigration(b.driver))
      .map((b) => b.id);
    const placement = { flavor: instance.flavor, image, requestId, excludedHostIds: [own, ...unfit] };
    if (host === undefined) return placeExisting(this.ctx, instance, placement);
    const claimed = await claimExisting(this.ctx, instance, host, placement);
    if (!claimed)
      throw new MigrationPreCheckError(instance.id, 'the host has no room for it or fails a filter', host);
    return claimed;
  }

  private async run(
    taken: TakenTask,
    source: Live,
    image: import('../model/image.js').Image,
    options: z.output<typeof optionsSchema>,
  ): Promise<Instance> {
    const { deps } = this.ctx;
    const { working, record, task } = taken;
    const id = working.id;
    const sourceHostId = working.hostId!;
    let migration = await this.log.begin(working, 'live', {
      destHostId: options.host ?? null,
      newFlavorId: working.flavor.id,
      status: 'preparing',
    });
    let selection: Selection;
    let dest: Live;
    try {
      selection = await this.place(working, image, record.requestId, options.host);
      dest = this.live(selection.hostId);
    } catch (e) {
      await this.log.update(migration, { status: 'error', error: (e as Error).message });
      await endTask(this.ctx, working, 'migrating', record, {}, faultOf(e, this.ctx.now()));
      throw e;
    }
    const destHostId = selection.hostId;
    migration = await this.log.update(migration, { destHostId });
    const cleanUp = async () => {
      await this.ctx
        .callDriver(
          'move',
          { operation: 'rollbackLiveMigrationTarget', instanceId: id, hostId: destHostId },
          undefined,
          (_, call) => dest.rollbackLiveMigrationTarget(working, callOf(call)),
        )
        .catch(() => undefined);
      deps.scheduler.buildFinished?.(selection.claim);
      await deps.scheduler.release(selection.claim);
    };
    // prepare and check: a refusal is a pre-check failure the caller sees with its reason
    let target: MigrationTarget;
    try {
      const prepared = await this.ctx.callDriver(
        'move',
        { operation: 'prepareLiveMigrationTarget', instanceId: id, hostId: destHostId },
        task,
        (_, call) => dest.prepareLiveMigrationTarget({ ...working, hostId: destHostId }, callOf(call)),
      );
      target = { ...prepared, hostId: destHostId, sameHost: false };
      await this.ctx.callDriver(
        'move',
        { operation: 'checkLiveMigration', instanceId: id, hostId: sourceHostId },
        task,
        (_, call) => source.checkLiveMigration(working, target, callOf(call)),
      );
    } catch (e) {
      await cleanUp();
      const refused = new MigrationPreCheckError(id, (e as Error).message, destHostId, { cause: e });
      await this.log.update(migration, { status: 'error', error: refused.message });
      await endTask(this.ctx, working, 'migrating', record, {}, faultOf(refused, this.ctx.now()));
      throw refused;
    }
    const run: Running = {
      source,
      instance: working,
      allowPostCopy: options.allowPostCopy ?? true,
      task,
      forced: false,
      aborted: false,
    };
    this.running.set(id, run);
    migration = await this.log.update(migration, { status: 'running' });
    const completion = deps.options.liveMigrationCompletionTimeoutMs;
    // the completion policy: a migration still running at its deadline is forced to finish
    const policy =
      completion > 0
        ? setTimeout(() => {
            if (this.running.get(id) === run && !run.forced) void this.force(run).catch(() => undefined);
          }, completion)
        : undefined;
    policy?.unref?.();
    let lastStored = 0;
    let latest: MigrationProgress | null = null;
    // progress writes in order, each on the record the previous one wrote; awaited before the end
    let writes: Promise<void> = Promise.resolve();
    const onProgress = (p: LiveMigrationProgress) => {
      latest = { ...p };
      const at = this.ctx.now();
      if (at - lastStored < PROGRESS_EVERY_MS) return;
      lastStored = at;
      const progress = latest;
      writes = writes.then(async () => {
        migration = await this.log.update(migration, { progress });
      });
    };
    let result: LiveMigrationResult;
    try {
      result = await this.ctx.callDriver(
        'move',
        { operation: 'liveMigrate', instanceId: id, hostId: sourceHostId },
        task,
        (_, call) =>
          source.liveMigrate(working, target, {
            onProgress,
            ...(options.maxDowntimeMs !== undefined ? { maxDowntimeMs: options.maxDowntimeMs } : {}),
            ...(options.bandwidthMiBps !== undefined ? { bandwidthMiBps: options.bandwidthMiBps } : {}),
            allowPostCopy: run.allowPostCopy,
            ...callOf(call),
          }),
      );
    } catch (e) {
      if (policy) clearTimeout(policy);
      this.running.delete(id);
      await writes;
      await cleanUp();
      const aborted = run.aborted;
      const fault = faultOf(e, this.ctx.now(), { hostId: destHostId });
      await this.log.update(migration, {
        status: aborted ? 'cancelled' : 'failed',
        error: fault.message,
        progress: latest,
      });
      // the guest still runs on the source: the record stays there, in its state
      await endTask(this.ctx, working, 'migrating', record, {}, fault);
      throw driverFailure(
        e,
        { driver: source.kind, operation: 'liveMigrate', instanceId: id, hostId: sourceHostId },
        fault.message,
      );
    }
    if (policy) clearTimeout(policy);
    this.running.delete(id);
    await writes;
    const sourceClaims = (await deps.claims.list({ instanceId: id })).filter(
      (c) => c.hostId === sourceHostId && c.id !== selection.claim.id,
    );
    const zone = selection.availabilityZone ?? (await deps.hosts.get(destHostId))?.availabilityZone;
    const outcome = outcomeOf('live-migration', working.vmState);
    const done = await endTask(
      this.ctx,
      working,
      'migrating',
      record,
      {
        hostId: destHostId,
        availabilityZone: zone ?? working.availabilityZone,
        vmState: outcome.vmState,
        powerState: outcome.powerState,
      },
      null,
    );
    deps.scheduler.buildFinished?.(selection.claim);
    // the source's claim goes once the record names the destination
    for (const c of sourceClaims) await deps.scheduler.release(c).catch(() => undefined);
    const measured: MigrationProgress = {
      ...(latest ?? { elapsedMs: result.totalMs }),
      phase: result.postCopy ? 'postcopy' : 'precopy',
      elapsedMs: result.totalMs,
      ...(result.downtimeMs !== undefined ? { downtimeMs: result.downtimeMs } : {}),
      dataRemainingBytes: 0,
    };
    await this.log.update(migration, { status: 'completed', progress: measured });
    return done ?? (await deps.instances.get(id)) ?? working;
  }
}
