import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { DriverCallOptions, Instance } from '@nova-lfs/core';
import type {
  ForceCompleteMode,
  LiveMigratable,
  LiveMigrationOptions,
  LiveMigrationProgress,
  LiveMigrationResult,
  MigrationTarget,
} from '@nova-lfs/core/ports';
import {
  Connection,
  type Domain,
  DomainState,
  DomainXmlFlags,
  isLibvirtError,
  JobStatsFlags,
  JobType,
  UndefineFlags,
  VirErrorNumber,
} from '@nova-lfs/libvirt';
import { wrapLibvirtError } from './errors.js';
import { KvmLiveMigrationRefusedError, type LiveMigrationRefusal } from './live-migration-errors.js';
import { migrationParameters, type StorageMode } from './migration-policy.js';
import { checkDestinationHypervisor, parseCapabilities } from './migration-precheck.js';
import { downtimeFromCompletedStats, progressFromJobStats } from './migration-progress.js';
import { decodeTargetParams, encodeTargetParams, type KvmMigrationTargetParams } from './migration-target.js';
import { type DomainMoveFacts, domainMoveFacts, filesUnder, retargetDomainXml } from './migration-xml.js';

/** Options of {@link KvmLiveMigration}. */
export interface KvmLiveMigrationOptions {
  /** This host's libvirtd, e.g. `qemu:///system`. */
  readonly uri: string;
  /** This host's metadata scope (`<nova:host>` of its domains). */
  readonly hostId: string;
  /** The instance's directory on this host (console log, disks). */
  readonly instanceDir: (instanceId: string) => string;
  /**
   * The URI another host's driver opens to reach this libvirtd when it migrates a guest here
   * (default {@link KvmLiveMigrationOptions.uri}), e.g. `qemu+unix:///system?socket=...` for the
   * second libvirtd of scripts/services/start-libvirt-second.sh, or `qemu+tcp://HOST/system`.
   */
  readonly migrationUri?: string;
  /** Address this host's QEMU listens on for incoming migration streams (default `127.0.0.1`). */
  readonly migrationAddress?: string;
  /** A fixed port for incoming streams; by default libvirt picks one from its `migration_port_min..max`. */
  readonly migrationPort?: number;
  /** How often a running migration's job statistics are read for `onProgress`, ms (default 500). */
  readonly progressIntervalMs?: number;
  /**
   * This host's connection, shared with its owner (the driver), which closes it; by default the
   * module opens its own to {@link KvmLiveMigrationOptions.uri} and closes it in `close()`.
   */
  readonly connection?: () => Promise<Connection>;
}

/** A migration running from this host. */
interface Running {
  readonly domain: Domain;
  readonly allowPostCopy: boolean;
  phase: LiveMigrationProgress['phase'];
  /** Settles when the migration call has returned (either way). */
  readonly settled: Promise<unknown>;
}

const PROBE_FILE = '.nova-lfs-storage-probe';
const MIGRATABLE_XML = DomainXmlFlags.Migratable | DomainXmlFlags.Secure;

/**
 * Live migration of KVM guests between two libvirtds (the driver's `LiveMigratable` port), over
 * `@nova-lfs/libvirt`: libvirt's managed direct migration (`virDomainMigrate3`: this process
 * holds a connection to both daemons, so each needs to reach only its own), live, the definition
 * moved with the guest, the migration stream on the destination's `migrate_uri` and
 * `listen_address` (loopback here). The destination's XML gets its host id and its instance
 * directory; on shared storage (the destination's instance directory visible from here, as Nova's
 * shared-storage test file checks) the console log and disks are hard-linked there and libvirt is
 * told so (`VIR_MIGRATE_UNSAFE`); a guest with local disks and no shared storage is refused (no
 * block copy). Progress from the job's statistics; abort (`virDomainAbortJob`) leaves the guest on
 * the source; force-complete by post-copy (needs `allowPostCopy` at the start) or a raised downtime.
 */
export class KvmLiveMigration implements LiveMigratable {
  private conn: Promise<Connection> | undefined;
  private readonly running = new Map<string, Running>();

  constructor(private readonly options: KvmLiveMigrationOptions) {}

  // ---- destination side ------------------------------------------------------------------------

  /**
   * Makes the instance's directory here (with a shared-storage probe file in it) and says how to
   * reach this libvirtd and its QEMU.
   * @throws KvmLiveMigrationRefusedError `exists-on-destination` when a domain of the instance is here.
   */
  async prepareLiveMigrationTarget(
    instance: Instance,
    options?: DriverCallOptions,
  ): Promise<MigrationTarget> {
    options?.signal?.throwIfAborted();
    const conn = await this.connection('prepareLiveMigrationTarget', instance.id);
    const existing = await this.lookup(conn, instance.id, 'prepareLiveMigrationTarget');
    if (existing) {
      await existing.free();
      throw new KvmLiveMigrationRefusedError(
        'prepareLiveMigrationTarget',
        'exists-on-destination',
        `a domain of instance ${instance.id} already exists on host ${this.options.hostId}`,
        { instanceId: instance.id },
      );
    }
    const dir = this.options.instanceDir(instance.id);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const storageToken = randomUUID();
    const storageProbe = join(dir, PROBE_FILE);
    await writeFile(storageProbe, storageToken);
    const address = this.options.migrationAddress ?? '127.0.0.1';
    const port = this.options.migrationPort === undefined ? '' : `:${this.options.migrationPort}`;
    const params: KvmMigrationTargetParams = {
      uri: this.options.migrationUri ?? this.options.uri,
      hostId: this.options.hostId,
      instanceDir: dir,
      migrateUri: `tcp://${address.includes(':') ? `[${address}]` : address}${port}`,
      listenAddress: address,
      storageProbe,
      storageToken,
    };
    return {
      hostId: this.options.hostId,
      driverKind: 'kvm',
      sameHost: false,
      params: encodeTargetParams(params),
    };
  }

  /**
   * Removes what a failed or aborted migration left here: a domain of the instance that is not
   * running (an incoming one libvirt did not clean up) and the instance's directory once no domain
   * of it is here. A running domain (the migration succeeded) is left alone. Idempotent.
   */
  async rollbackLiveMigrationTarget(instance: Instance, options?: DriverCallOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    const conn = await this.connection('rollbackLiveMigrationTarget', instance.id);
    const domain = await this.lookup(conn, instance.id, 'rollbackLiveMigrationTarget');
    if (domain) {
      try {
        const { state } = await domain.state();
        if (state === DomainState.Running) return;
        if (state !== DomainState.Shutoff) await domain.destroy().catch(ignoreNoDomain);
        await domain.undefine(UndefineFlags.ManagedSave).catch(ignoreNoDomain);
      } catch (e) {
        throw wrapLibvirtError('rollbackLiveMigrationTarget', e, instance.id);
      } finally {
        await domain.free();
      }
    }
    await rm(this.options.instanceDir(instance.id), { recursive: true, force: true });
  }

  // ---- source side -----------------------------------------------------------------------------

  /**
   * Refuses early, with a {@link KvmLiveMigrationRefusedError} whose `details.reason` and message
   * say why: `guest-missing`, `not-running`, `driver-kind`, `invalid-target`,
   * `destination-unreachable`, `exists-on-destination`, `same-host`, `arch-unsupported`,
   * `cpu-incompatible` (libvirt names the missing features), `shared-storage-missing`.
   */
  async checkLiveMigration(
    instance: Instance,
    target: MigrationTarget,
    options?: DriverCallOptions,
  ): Promise<void> {
    options?.signal?.throwIfAborted();
    const op = 'checkLiveMigration';
    const t = decodeTargetParams(target, instance.id);
    const conn = await this.connection(op, instance.id);
    const domain = await this.requireRunning(conn, instance.id, op);
    let dest: Connection | undefined;
    try {
      const facts = domainMoveFacts(await domain.xml(MIGRATABLE_XML));
      dest = await this.openDestination(t, instance.id, op);
      const failure = await checkDestinationHypervisor(
        dest,
        parseCapabilities(await conn.capabilities()),
        facts,
      );
      if (failure) throw this.refused(op, failure.reason, failure.message, instance.id, t);
      const there = await this.lookup(dest, instance.id, op);
      if (there) {
        await there.free();
        throw this.refused(
          op,
          'exists-on-destination',
          `a domain of instance ${instance.id} already exists on host ${t.hostId}`,
          instance.id,
          t,
        );
      }
      const local = localFiles(facts, this.options.instanceDir(instance.id));
      if (local.length > 0 && !(await sharedStorage(t)))
        throw this.refused(
          op,
          'shared-storage-missing',
          `the guest has local disks or boot files (${local.map((f) => basename(f)).join(', ')}) and host ${t.hostId}'s instance directory is not on storage shared with this host; copying them is not supported`,
          instance.id,
          t,
        );
    } catch (e) {
      if (e instanceof KvmLiveMigrationRefusedError) throw e;
      throw wrapLibvirtError(op, e, instance.id);
    } finally {
      await dest?.close().catch(() => undefined);
      await domain.free();
    }
  }

  /**
   * Moves the running guest to the destination; resolves once it runs there and is gone from
   * here (its definition too), with the wall time and libvirt's measured downtime. On failure,
   * abort or `options.signal` it rejects and the guest keeps running here.
   */
  async liveMigrate(
    instance: Instance,
    target: MigrationTarget,
    options: LiveMigrationOptions = {},
  ): Promise<LiveMigrationResult> {
    const op = 'liveMigrate';
    const signal = options.signal;
    signal?.throwIfAborted();
    const t = decodeTargetParams(target, instance.id);
    if (this.running.has(instance.id))
      throw this.refused(
        op,
        'already-migrating',
        `instance ${instance.id} is being migrated already`,
        instance.id,
        t,
      );
    const conn = await this.connection(op, instance.id);
    const domain = await this.requireRunning(conn, instance.id, op);
    const started = Date.now();
    const srcDir = this.options.instanceDir(instance.id);
    const linked: string[] = [];
    let dest: Connection | undefined;
    try {
      dest = await this.openDestination(t, instance.id, op);
      const live = await domain.xml(MIGRATABLE_XML);
      const persistent = await domain.xml(MIGRATABLE_XML | DomainXmlFlags.Inactive);
      const facts = domainMoveFacts(live);
      const shared = srcDir !== t.instanceDir && (await sharedStorage(t));
      if (localFiles(facts, srcDir).length > 0 && !shared && srcDir !== t.instanceDir)
        throw this.refused(
          op,
          'shared-storage-missing',
          `the guest has local disks or boot files and no storage shared with host ${t.hostId}`,
          instance.id,
          t,
        );
      if (shared) linked.push(...(await linkInto(filesUnder(live, srcDir), srcDir, t.instanceDir)));
      const storage: StorageMode = facts.diskFiles.length > 0 ? 'shared' : 'none';
      const retarget = (xml: string) =>
        retargetDomainXml(xml, { hostId: t.hostId, fromDir: srcDir, toDir: t.instanceDir });
      const params = migrationParameters(t, {
        storage,
        destinationXml: retarget(live),
        persistentXml: retarget(persistent),
        ...(options.allowPostCopy !== undefined ? { allowPostCopy: options.allowPostCopy } : {}),
        ...(options.bandwidthMiBps !== undefined ? { bandwidthMiBps: options.bandwidthMiBps } : {}),
      });

      const migration = domain.migrate(dest, params);
      const record: Running = {
        domain,
        allowPostCopy: options.allowPostCopy === true,
        phase: 'precopy',
        settled: migration.then(
          () => undefined,
          () => undefined,
        ),
      };
      this.running.set(instance.id, record);
      const onAbort = () => void domain.abortJob().catch(() => undefined);
      signal?.addEventListener('abort', onAbort, { once: true });
      const watching = this.watch(record, options, started);
      let moved: Domain;
      try {
        moved = await migration;
      } finally {
        signal?.removeEventListener('abort', onAbort);
        await watching;
        this.running.delete(instance.id);
      }
      const completed = await moved.jobStats(JobStatsFlags.Completed).catch(() => undefined);
      await moved.free();
      const downtimeMs = completed ? downtimeFromCompletedStats(completed.fields) : undefined;
      const totalMs = Date.now() - started;
      if (srcDir !== t.instanceDir) await rm(srcDir, { recursive: true, force: true });
      await rm(t.storageProbe, { force: true }).catch(() => undefined);
      notify(options, {
        phase: record.phase,
        elapsedMs: totalMs,
        dataRemainingBytes: 0,
        ...(downtimeMs !== undefined ? { downtimeMs } : {}),
      });
      return {
        totalMs,
        ...(downtimeMs !== undefined ? { downtimeMs } : {}),
        postCopy: record.phase === 'postcopy',
      };
    } catch (e) {
      // The guest is still here (libvirt rolls a failed or aborted pre-copy migration back): the
      // links made for the destination go, the rest is the destination's rollback.
      await Promise.all(linked.map((f) => unlink(f).catch(() => undefined)));
      if (signal?.aborted) throw signal.reason;
      if (e instanceof KvmLiveMigrationRefusedError) throw e;
      throw wrapLibvirtError(op, e, instance.id);
    } finally {
      await dest?.close().catch(() => undefined);
      await domain.free();
    }
  }

  /**
   * Aborts the running migration of `instance` (`virDomainAbortJob`) and resolves once the
   * migration call has returned: the guest keeps running here. A migration already in post-copy
   * cannot be aborted (libvirt refuses).
   * @throws KvmLiveMigrationRefusedError `no-migration` when none of it runs here.
   */
  async abortLiveMigration(instance: Instance): Promise<void> {
    const record = this.runningOf(instance.id, 'abortLiveMigration');
    try {
      await record.domain.abortJob();
    } catch (e) {
      throw wrapLibvirtError('abortLiveMigration', e, instance.id);
    }
    await record.settled;
  }

  /**
   * Finishes a running migration that does not converge: post-copy (`virDomainMigrateStartPostCopy`;
   * the guest runs on the destination at once and its pages follow on demand; the migration must
   * have been started with `allowPostCopy`) or a raised maximum downtime (`virDomainMigrateSetMaxDowntime`).
   * @throws KvmLiveMigrationRefusedError `no-migration`, `postcopy-not-allowed`.
   */
  async forceCompleteLiveMigration(instance: Instance, mode: ForceCompleteMode): Promise<void> {
    const op = 'forceCompleteLiveMigration';
    const record = this.runningOf(instance.id, op);
    if (mode.kind === 'postcopy' && !record.allowPostCopy)
      throw new KvmLiveMigrationRefusedError(
        op,
        'postcopy-not-allowed',
        `the migration of instance ${instance.id} was started without allowPostCopy: post-copy cannot be switched on later`,
        { instanceId: instance.id },
      );
    try {
      if (mode.kind === 'postcopy') {
        await record.domain.migrateStartPostCopy();
        record.phase = 'postcopy';
      } else {
        await record.domain.migrateSetMaxDowntime(Math.max(1, Math.round(mode.downtimeMs)));
      }
    } catch (e) {
      throw wrapLibvirtError(op, e, instance.id);
    }
  }

  /** Closes this host's libvirt connection (migrations still running keep it until they end). */
  async close(): Promise<void> {
    await Promise.all([...this.running.values()].map((r) => r.settled));
    const conn = this.conn;
    this.conn = undefined;
    if (conn) await (await conn.catch(() => undefined))?.close();
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * Reads the job's statistics while the migration runs and reports them. libvirt's
   * migration-iteration events are not bound by `@nova-lfs/libvirt`, so this is a bounded poll of
   * a real state: quickly until the job is seen (to apply `maxDowntimeMs` before the switch-over),
   * then every `progressIntervalMs`.
   */
  private async watch(record: Running, options: LiveMigrationOptions, started: number): Promise<void> {
    let done = false;
    void record.settled.then(() => (done = true));
    let downtimeSet = options.maxDowntimeMs === undefined;
    const interval = this.options.progressIntervalMs ?? 500;
    let seen = false;
    while (!done) {
      await Promise.race([record.settled, new Promise((r) => setTimeout(r, seen ? interval : 50))]);
      if (done) break;
      const stats = await record.domain.jobStats().catch(() => undefined);
      if (!stats || stats.type === JobType.None || stats.type === JobType.Completed) continue;
      seen = true;
      if (!downtimeSet && options.maxDowntimeMs !== undefined) {
        downtimeSet = await record.domain
          .migrateSetMaxDowntime(Math.max(1, Math.round(options.maxDowntimeMs)))
          .then(() => true)
          .catch(() => false);
      }
      if (!done) notify(options, progressFromJobStats(stats.fields, record.phase, Date.now() - started));
    }
  }

  private runningOf(instanceId: string, op: string): Running {
    const record = this.running.get(instanceId);
    if (!record)
      throw new KvmLiveMigrationRefusedError(
        op,
        'no-migration',
        `no live migration of instance ${instanceId} runs on host ${this.options.hostId}`,
        { instanceId },
      );
    return record;
  }

  private refused(
    op: string,
    reason: LiveMigrationRefusal,
    message: string,
    instanceId: string,
    t: KvmMigrationTargetParams,
    cause?: unknown,
  ): KvmLiveMigrationRefusedError {
    return new KvmLiveMigrationRefusedError(op, reason, message, {
      instanceId,
      destinationHostId: t.hostId,
      ...(cause !== undefined ? { cause } : {}),
    });
  }

  private connection(op: string, instanceId: string): Promise<Connection> {
    const shared = this.options.connection;
    if (!shared && !this.conn) {
      this.conn = Connection.open(this.options.uri);
      this.conn.catch(() => {
        this.conn = undefined;
      });
    }
    const conn = shared ? shared() : (this.conn as Promise<Connection>);
    return conn.catch((e) => {
      throw wrapLibvirtError(op, e, instanceId, { retryable: true });
    });
  }

  private async openDestination(
    t: KvmMigrationTargetParams,
    instanceId: string,
    op: string,
  ): Promise<Connection> {
    try {
      return await Connection.open(t.uri);
    } catch (e) {
      const why = isLibvirtError(e) ? e.details.message : (e as Error).message;
      throw this.refused(
        op,
        'destination-unreachable',
        `the destination's libvirtd (${t.uri}) does not answer: ${why}`,
        instanceId,
        t,
        e,
      );
    }
  }

  private async lookup(conn: Connection, instanceId: string, op: string): Promise<Domain | undefined> {
    try {
      return await conn.lookupByUUID(instanceId);
    } catch (e) {
      if (isLibvirtError(e, VirErrorNumber.NoDomain)) return undefined;
      throw wrapLibvirtError(op, e, instanceId);
    }
  }

  /** The instance's domain here, running or paused. */
  private async requireRunning(conn: Connection, instanceId: string, op: string): Promise<Domain> {
    const domain = await this.lookup(conn, instanceId, op);
    if (!domain)
      throw new KvmLiveMigrationRefusedError(
        op,
        'guest-missing',
        `no domain of instance ${instanceId} on host ${this.options.hostId}`,
        { instanceId },
      );
    const { state, stateName } = await domain.state().catch(async (e) => {
      await domain.free();
      throw wrapLibvirtError(op, e, instanceId);
    });
    if (state !== DomainState.Running && state !== DomainState.Paused) {
      await domain.free();
      throw new KvmLiveMigrationRefusedError(
        op,
        'not-running',
        `the guest of instance ${instanceId} is ${stateName}, not running: only a running guest live-migrates`,
        { instanceId },
      );
    }
    return domain;
  }
}

/** Whether the destination's probe file is visible here with its token (shared storage). */
async function sharedStorage(t: KvmMigrationTargetParams): Promise<boolean> {
  return (await readFile(t.storageProbe, 'utf8').catch(() => undefined)) === t.storageToken;
}

/** Hard-links `files` (all under `fromDir`) into `toDir`; returns the links made. */
async function linkInto(files: readonly string[], fromDir: string, toDir: string): Promise<string[]> {
  const made: string[] = [];
  for (const f of files) {
    const to = join(toDir, f.slice(fromDir.replace(/\/$/, '').length));
    await unlink(to).catch(() => undefined);
    await link(f, to);
    made.push(to);
  }
  return made;
}

function notify(options: LiveMigrationOptions, p: LiveMigrationProgress): void {
  try {
    options.onProgress?.(p);
  } catch {
    // a listener's failure does not stop the migration
  }
}

function ignoreNoDomain(e: unknown): void {
  if (isLibvirtError(e, VirErrorNumber.NoDomain) || isLibvirtError(e, VirErrorNumber.OperationInvalid))
    return;
  throw e;
}

/** The disks and the instance directory's own boot files (kernel, initramfs): what a move must find on the destination. */
function localFiles(facts: DomainMoveFacts, instanceDir: string): string[] {
  return [...facts.diskFiles, ...facts.bootFiles.filter((f) => f.startsWith(`${instanceDir}/`))];
}
