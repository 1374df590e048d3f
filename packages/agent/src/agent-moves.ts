import type { RpcContext, RpcMethod } from '@nova-lfs/bus-nats';
import type { ComputeDriver, DriverCallOptions, Image, ImageService, Instance } from '@nova-lfs/core';
import {
  type LiveMigrationProgress,
  supportsColdMigration,
  supportsInterfaceAttach,
  supportsLiveMigration,
  supportsRescue,
  supportsVolumeAttach,
} from '@nova-lfs/core/ports';
import type { CallArtifacts } from './driver-protocol.js';
import { moveRpc, PROGRESS_EVENT_EVERY_MS } from './move-protocol.js';

/** How a handler runs (see `AgentService`). */
export interface ServeOptions {
  /** Queue behind (and be preempted by a destroy of) other calls on the instance. Default true. */
  readonly lane?: boolean;
  /** Remember the result by operation id, so a resend (even after a restart) returns it. Default true. */
  readonly journal?: boolean;
}

/** The parts of `AgentService` its move handlers use. */
export interface MoveHandlerHost {
  readonly driver: ComputeDriver;
  /** Serves `method` with `work`, on the instance's lane and journaled unless told otherwise. */
  serve<P extends { instance: Instance }, R>(
    method: RpcMethod<P, R>,
    work: (payload: P, options: DriverCallOptions, ctx: RpcContext) => Promise<R>,
    options?: ServeOptions,
  ): void;
  /** The image service of one call: `image` and its linked kernel and initrd fetched into the agent's cache first. */
  callImages(
    image: Image,
    instance: Instance,
    artifacts: CallArtifacts,
    signal: AbortSignal | undefined,
  ): Promise<ImageService>;
  /** Publishes a migration's progress (best effort). */
  publishProgress(payload: {
    instanceId: string;
    operationId: string;
    progress: LiveMigrationProgress;
  }): void;
  unsupported(capability: string): Error;
}

const done = {} as Record<string, never>;

/**
 * Serves `moveRpc` (driver protocol revision 2) with the agent's driver: cold migration and
 * resize, rescue, live migration and volume hot-plug. Guest-changing steps run on the instance's
 * lane and are journaled by operation id with their results (a resent `migrateDisksAndPowerOff`
 * answers the disks it handed over, instead of failing on a guest it already moved). Abort and
 * force-complete of a live migration run beside the migration, which holds the instance's lane.
 */
export function registerMoveHandlers(host: MoveHandlerHost): void {
  const d = host.driver;
  const cold = () => {
    if (!supportsColdMigration(d)) throw host.unsupported('coldMigration');
    return d;
  };
  const live = () => {
    if (!supportsLiveMigration(d)) throw host.unsupported('liveMigration');
    return d;
  };

  host.serve(moveRpc.prepareColdMigrationTarget, (p, o) =>
    cold().prepareColdMigrationTarget(p.instance, p.flavor, o),
  );
  host.serve(moveRpc.migrateDisksAndPowerOff, (p, o) =>
    cold().migrateDisksAndPowerOff(p.instance, p.target, o),
  );
  host.serve(moveRpc.finishMigration, async (p, o) => {
    await cold().finishMigration({
      ...o,
      instance: p.instance,
      flavor: p.flavor,
      image: p.image,
      images: await host.callImages(p.image, p.instance, p, o.signal),
      disks: p.disks,
      powerOn: p.powerOn,
      volumes: p.volumes,
    });
    return done;
  });
  host.serve(moveRpc.confirmMigration, async (p, o) => {
    await cold().confirmMigration(p.instance, o);
    return done;
  });
  host.serve(moveRpc.revertMigrationOnDestination, async (p, o) => {
    await cold().revertMigrationOnDestination(p.instance, o);
    return done;
  });
  host.serve(moveRpc.finishRevertMigration, async (p, o) => {
    await cold().finishRevertMigration(p.instance, p.powerOn, o);
    return done;
  });

  host.serve(moveRpc.rescue, async (p, o) => {
    if (!supportsRescue(d)) throw host.unsupported('rescue');
    await d.rescue({
      ...o,
      instance: p.instance,
      flavor: p.flavor,
      rescueImage: p.rescueImage,
      images: await host.callImages(p.rescueImage, p.instance, p, o.signal),
    });
    return done;
  });
  host.serve(moveRpc.unrescue, async (p, o) => {
    if (!supportsRescue(d)) throw host.unsupported('rescue');
    await d.unrescue(p.instance, o);
    return done;
  });

  host.serve(moveRpc.prepareLiveMigrationTarget, (p, o) => live().prepareLiveMigrationTarget(p.instance, o));
  host.serve(
    moveRpc.checkLiveMigration,
    async (p, o) => {
      await live().checkLiveMigration(p.instance, p.target, o);
      return done;
    },
    { journal: false },
  );
  host.serve(moveRpc.liveMigrate, (p, o, ctx) => {
    const operationId = ctx.operationId;
    let lastSent = 0;
    let lastPhase: LiveMigrationProgress['phase'] | undefined;
    const onProgress = (progress: LiveMigrationProgress) => {
      if (!operationId) return;
      const now = Date.now();
      if (progress.phase === lastPhase && now - lastSent < PROGRESS_EVENT_EVERY_MS) return;
      lastSent = now;
      lastPhase = progress.phase;
      host.publishProgress({ instanceId: p.instance.id, operationId, progress: { ...progress } });
    };
    return live().liveMigrate(p.instance, p.target, {
      ...o,
      onProgress,
      ...(p.maxDowntimeMs !== undefined ? { maxDowntimeMs: p.maxDowntimeMs } : {}),
      ...(p.bandwidthMiBps !== undefined ? { bandwidthMiBps: p.bandwidthMiBps } : {}),
      ...(p.allowPostCopy !== undefined ? { allowPostCopy: p.allowPostCopy } : {}),
    });
  });
  host.serve(
    moveRpc.abortLiveMigration,
    async (p) => {
      await live().abortLiveMigration(p.instance);
      return done;
    },
    { lane: false, journal: false },
  );
  host.serve(
    moveRpc.forceCompleteLiveMigration,
    async (p) => {
      await live().forceCompleteLiveMigration(p.instance, p.mode);
      return done;
    },
    { lane: false, journal: false },
  );
  host.serve(moveRpc.rollbackLiveMigrationTarget, async (p, o) => {
    await live().rollbackLiveMigrationTarget(p.instance, o);
    return done;
  });

  host.serve(moveRpc.attachVolume, async (p) => {
    if (!supportsVolumeAttach(d)) throw host.unsupported('volumeAttach');
    const device = await d.attachVolume(p.instance, p.device);
    return device ? { device } : {};
  });
  host.serve(moveRpc.detachVolume, async (p) => {
    if (!supportsVolumeAttach(d)) throw host.unsupported('volumeAttach');
    await d.detachVolume(p.instance, p.device);
    return done;
  });
  host.serve(moveRpc.attachInterface, async (p) => {
    if (!supportsInterfaceAttach(d)) throw host.unsupported('interfaceAttach');
    await d.attachInterface(p.instance, p.port);
    return done;
  });
  host.serve(moveRpc.detachInterface, async (p) => {
    if (!supportsInterfaceAttach(d)) throw host.unsupported('interfaceAttach');
    await d.detachInterface(p.instance, p.port);
    return done;
  });
}
