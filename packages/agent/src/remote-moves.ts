import { randomUUID } from 'node:crypto';
import type { BusEventSubscriber, RpcMethod } from '@nova-lfs/bus-nats';
import type {
  BlockDevice,
  DriverCallOptions,
  DriverTimeouts,
  Flavor,
  Image,
  ImageService,
  Instance,
  PortBinding,
} from '@nova-lfs/core';
import type {
  FinishMigrationRequest,
  ForceCompleteMode,
  LiveMigrationOptions,
  LiveMigrationResult,
  MigratedDisks,
  MigrationTarget,
  RescueRequest,
} from '@nova-lfs/core/ports';
import { filter } from 'rxjs';
import type { CallArtifacts } from './driver-protocol.js';
import { migrationProgressEvent, moveRpc } from './move-protocol.js';

/** What a remote call needs to say about itself (see `RemoteDriver`'s private `call`). */
export interface RemoteCallWhat {
  readonly operation: string;
  readonly instanceId?: string;
  /** Guest-changing: sent with an operation id, resent with it while the agent does not answer. */
  readonly mutating: boolean;
  /** The operation id to use (default: a new one for a mutating call). */
  readonly operationId?: string;
}

/** The parts of `RemoteDriver` its move ports use. */
export interface RemoteMoveCaller {
  readonly hostId: string;
  readonly subscriber: BusEventSubscriber;
  call<P, R>(
    method: RpcMethod<P, R>,
    payload: P,
    kind: keyof DriverTimeouts,
    what: RemoteCallWhat,
    options?: DriverCallOptions,
  ): Promise<R>;
  /**
   * Runs `use` with the engine's verified artifacts of `image` (and its kernel and initrd) when
   * the agent needs bytes (`{}` otherwise), readable by the agent over the bus while `use` runs.
   */
  withArtifacts<T>(
    operation: string,
    image: Image,
    images: ImageService,
    instance: Instance,
    options: DriverCallOptions | undefined,
    use: (artifacts: CallArtifacts) => Promise<T>,
  ): Promise<T>;
}

/**
 * The move ports of core's `driver-moves.ts` (cold migration and resize, rescue, live migration)
 * as RPCs to the agent (`moveRpc`, driver protocol revision 2). Every step is a `move` call; the
 * guest-changing ones carry an operation id, so a resend after a lost reply runs once on the
 * agent (its journal keeps their results). A live migration's progress arrives as events of the
 * call's own operation id; abort and force-complete reach the agent while the migration runs.
 */
export class RemoteMoves {
  constructor(private readonly remote: RemoteMoveCaller) {}

  prepareColdMigrationTarget(
    instance: Instance,
    flavor: Flavor,
    options?: DriverCallOptions,
  ): Promise<MigrationTarget> {
    return this.remote.call(
      moveRpc.prepareColdMigrationTarget,
      { instance, flavor },
      'move',
      this.on('prepareColdMigrationTarget', instance),
      options,
    );
  }

  migrateDisksAndPowerOff(
    instance: Instance,
    target: MigrationTarget,
    options?: DriverCallOptions,
  ): Promise<MigratedDisks> {
    return this.remote.call(
      moveRpc.migrateDisksAndPowerOff,
      { instance, target },
      'move',
      this.on('migrateDisksAndPowerOff', instance),
      options,
    );
  }

  async finishMigration(request: FinishMigrationRequest): Promise<void> {
    const { instance } = request;
    await this.remote.withArtifacts(
      'finishMigration',
      request.image,
      request.images,
      instance,
      request,
      (artifacts) =>
        this.remote.call(
          moveRpc.finishMigration,
          {
            instance,
            flavor: request.flavor,
            image: request.image,
            ...artifacts,
            disks: request.disks,
            powerOn: request.powerOn,
            volumes: [...request.volumes],
          },
          'move',
          this.on('finishMigration', instance),
          request,
        ),
    );
  }

  async confirmMigration(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.remote.call(
      moveRpc.confirmMigration,
      { instance },
      'move',
      this.on('confirmMigration', instance),
      options,
    );
  }

  async revertMigrationOnDestination(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.remote.call(
      moveRpc.revertMigrationOnDestination,
      { instance },
      'move',
      this.on('revertMigrationOnDestination', instance),
      options,
    );
  }

  async finishRevertMigration(
    instance: Instance,
    powerOn: boolean,
    options?: DriverCallOptions,
  ): Promise<void> {
    await this.remote.call(
      moveRpc.finishRevertMigration,
      { instance, powerOn },
      'move',
      this.on('finishRevertMigration', instance),
      options,
    );
  }

  async rescue(request: RescueRequest): Promise<void> {
    const { instance } = request;
    await this.remote.withArtifacts(
      'rescue',
      request.rescueImage,
      request.images,
      instance,
      request,
      (artifacts) =>
        this.remote.call(
          moveRpc.rescue,
          {
            instance,
            flavor: request.flavor,
            rescueImage: request.rescueImage,
            ...artifacts,
          },
          'move',
          this.on('rescue', instance),
          request,
        ),
    );
  }

  async unrescue(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.remote.call(moveRpc.unrescue, { instance }, 'move', this.on('unrescue', instance), options);
  }

  prepareLiveMigrationTarget(instance: Instance, options?: DriverCallOptions): Promise<MigrationTarget> {
    return this.remote.call(
      moveRpc.prepareLiveMigrationTarget,
      { instance },
      'move',
      this.on('prepareLiveMigrationTarget', instance),
      options,
    );
  }

  async checkLiveMigration(
    instance: Instance,
    target: MigrationTarget,
    options?: DriverCallOptions,
  ): Promise<void> {
    await this.remote.call(
      moveRpc.checkLiveMigration,
      { instance, target },
      'move',
      { operation: 'checkLiveMigration', instanceId: instance.id, mutating: false },
      options,
    );
  }

  async liveMigrate(
    instance: Instance,
    target: MigrationTarget,
    options: LiveMigrationOptions = {},
  ): Promise<LiveMigrationResult> {
    const operationId = randomUUID();
    const onProgress = options.onProgress;
    // subscribed before the request is sent (one connection: the server sees the SUB first)
    const progress = onProgress
      ? this.remote.subscriber
          .events$(migrationProgressEvent, { hostId: this.remote.hostId })
          .pipe(filter((e) => e.payload.operationId === operationId && e.payload.instanceId === instance.id))
          .subscribe({ next: (e) => onProgress(e.payload.progress), error: () => undefined })
      : undefined;
    try {
      return await this.remote.call(
        moveRpc.liveMigrate,
        {
          instance,
          target,
          ...(options.maxDowntimeMs !== undefined ? { maxDowntimeMs: options.maxDowntimeMs } : {}),
          ...(options.bandwidthMiBps !== undefined ? { bandwidthMiBps: options.bandwidthMiBps } : {}),
          ...(options.allowPostCopy !== undefined ? { allowPostCopy: options.allowPostCopy } : {}),
        },
        'move',
        { operation: 'liveMigrate', instanceId: instance.id, mutating: true, operationId },
        options,
      );
    } finally {
      progress?.unsubscribe();
    }
  }

  async abortLiveMigration(instance: Instance): Promise<void> {
    await this.remote.call(moveRpc.abortLiveMigration, { instance }, 'read', {
      operation: 'abortLiveMigration',
      instanceId: instance.id,
      mutating: false,
    });
  }

  async forceCompleteLiveMigration(instance: Instance, mode: ForceCompleteMode): Promise<void> {
    await this.remote.call(moveRpc.forceCompleteLiveMigration, { instance, mode }, 'read', {
      operation: 'forceCompleteLiveMigration',
      instanceId: instance.id,
      mutating: false,
    });
  }

  async rollbackLiveMigrationTarget(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.remote.call(
      moveRpc.rollbackLiveMigrationTarget,
      { instance },
      'move',
      this.on('rollbackLiveMigrationTarget', instance),
      options,
    );
  }

  /** Resolves the guest device the agent's driver reports (an agent from before it did: undefined). */
  async attachVolume(instance: Instance, device: BlockDevice): Promise<string | undefined> {
    const reply = await this.remote.call(
      moveRpc.attachVolume,
      { instance, device },
      'move',
      this.on('attachVolume', instance),
    );
    return reply.device;
  }

  async detachVolume(instance: Instance, device: BlockDevice): Promise<void> {
    await this.remote.call(
      moveRpc.detachVolume,
      { instance, device },
      'move',
      this.on('detachVolume', instance),
    );
  }

  async attachInterface(instance: Instance, port: PortBinding): Promise<void> {
    await this.remote.call(
      moveRpc.attachInterface,
      { instance, port },
      'move',
      this.on('attachInterface', instance),
    );
  }

  async detachInterface(instance: Instance, port: PortBinding): Promise<void> {
    await this.remote.call(
      moveRpc.detachInterface,
      { instance, port },
      'move',
      this.on('detachInterface', instance),
    );
  }

  private on(operation: string, instance: Instance): RemoteCallWhat {
    return { operation, instanceId: instance.id, mutating: true };
  }
}
