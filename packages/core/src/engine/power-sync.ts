import type { Subscription } from 'rxjs';
import { ErrorCode, NotFoundError, RevisionConflictError } from '../errors.js';
import type { PowerState, VmState } from '../model/states.js';
import { vmStateForPower } from '../model/transitions.js';
import type { ComputeDriver, PowerStateEvent } from '../ports/driver.js';
import type { EngineContext } from './engine-context.js';

/**
 * Keeps instances' power state in line with what drivers report on their own (Nova's
 * `sync_power_states`, pushed rather than polled). Instances with a task in progress are left to
 * that task. A guest that stops by itself moves its instance to `stopped`; a guest the store does
 * not know is reported as an orphan.
 */
export class PowerSync {
  private readonly subscriptions = new Map<string, Subscription>();

  constructor(private readonly ctx: EngineContext) {}

  /** Follows a host's driver events. */
  follow(hostId: string, driver: ComputeDriver): void {
    this.unfollow(hostId);
    const sub = driver.events$.subscribe({
      next: (event) => {
        void this.onEvent(hostId, event, driver).catch((e) => {
          const at = this.ctx.now();
          void this.ctx.recordQuietly({
            type: 'instance.fault',
            instanceId: event.instanceId,
            at,
            hostId,
            fault: { code: ErrorCode.PowerSync, message: e instanceof Error ? e.message : String(e), at },
          });
        });
      },
    });
    this.subscriptions.set(hostId, sub);
  }

  unfollow(hostId: string): void {
    this.subscriptions.get(hostId)?.unsubscribe();
    this.subscriptions.delete(hostId);
  }

  close(): void {
    for (const s of this.subscriptions.values()) s.unsubscribe();
    this.subscriptions.clear();
  }

  /**
   * Applies one observed power state to the instance, unless a task owns it. Events can arrive
   * late (after the engine's own operation finished), so the driver is asked for the current
   * power state before anything changes; the event's state is used only if that query fails.
   */
  async onEvent(hostId: string, event: PowerStateEvent, driver?: ComputeDriver): Promise<void> {
    const { deps } = this.ctx;
    for (let attempt = 0; attempt < 5; attempt++) {
      const instance = await deps.instances.get(event.instanceId);
      if (!instance) {
        if (event.powerState !== 'nostate' && !this.ctx.builds.has(event.instanceId)) {
          await this.ctx.record({
            type: 'instance.orphan',
            instanceId: event.instanceId,
            at: event.at,
            hostId,
            powerState: event.powerState,
            reaped: false,
          });
        }
        return;
      }
      if (instance.hostId !== hostId || instance.taskState !== null) return;
      const observed = driver
        ? await this.ctx
            .callDriver(
              'read',
              { operation: 'getPowerState', instanceId: instance.id, hostId },
              undefined,
              (d) => d.getPowerState(instance),
            )
            .catch(() => event.powerState)
        : event.powerState;
      const vmState = stableStateFor(instance.vmState, observed);
      if (instance.powerState === observed && instance.vmState === vmState) return;
      try {
        const vanished = vmState === 'error' && instance.vmState !== 'error';
        await this.ctx.apply(instance, {
          powerState: observed,
          vmState,
          ...(vanished
            ? {
                fault: {
                  code: ErrorCode.GuestMissing,
                  message: `guest vanished from host ${hostId}`,
                  at: event.at,
                },
              }
            : {}),
        });
        return;
      } catch (e) {
        if (e instanceof NotFoundError) return;
        if (!(e instanceof RevisionConflictError)) throw e;
      }
    }
  }
}

const heldStates: ReadonlySet<VmState> = new Set<VmState>([
  'resized',
  'rescued',
  'shelved',
  'shelved_offloaded',
]);

/** The stable state an instance should show given an observed power state. */
export function stableStateFor(current: VmState, power: PowerState): VmState {
  if (current === 'building' || current === 'error' || current === 'deleted') return current;
  // states no power state stands for: the guest's power changes, the state stays (a resized guest
  // waits for its confirm, a shelved one for its offload or unshelve, a rescued one for unrescue)
  if (heldStates.has(current)) return current;
  if (power === 'nostate') return current === 'active' ? 'error' : current;
  return vmStateForPower(power) ?? current;
}
