import { ErrorCode } from '@nova-lfs/core';
import { describe, expect, it } from 'vitest';
import { InstanceLanes } from './instance-lanes.js';

const never = (signal: AbortSignal) =>
  new Promise<never>((_, reject) =>
    signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
  );

describe('InstanceLanes', () => {
  it('runs calls on one instance one at a time and on different instances together', async () => {
    const lanes = new InstanceLanes();
    const order: string[] = [];
    const step = (name: string, ms: number) => async () => {
      order.push(`${name}:start`);
      await new Promise((r) => setTimeout(r, ms));
      order.push(`${name}:end`);
    };
    const signal = new AbortController().signal;
    await Promise.all([
      lanes.run('i1', { signal, operationId: undefined }, step('a', 30)),
      lanes.run('i1', { signal, operationId: undefined }, step('b', 1)),
      lanes.run('i2', { signal, operationId: undefined }, step('c', 1)),
    ]);
    expect(order.indexOf('a:end')).toBeLessThan(order.indexOf('b:start'));
    expect(order.indexOf('c:end')).toBeLessThan(order.indexOf('a:end'));
    expect(lanes.busyInstances).toBe(0);
  });

  it('a preempting call aborts the running and queued calls of its instance, then runs', async () => {
    const lanes = new InstanceLanes();
    const signal = new AbortController().signal;
    const running = lanes.run('i1', { signal, operationId: 'spawn' }, never).catch((e: unknown) => e);
    const queued = lanes
      .run('i1', { signal, operationId: 'reboot' }, async () => 'ran')
      .catch((e: unknown) => e);
    const destroyed = await lanes.run(
      'i1',
      { signal, operationId: 'destroy', preempt: true },
      async () => 'destroyed',
    );
    expect(destroyed).toBe('destroyed');
    expect(await running).toMatchObject({ code: ErrorCode.BuildAborted });
    expect(await queued).toMatchObject({ code: ErrorCode.BuildAborted });
  });

  it('cancels a call by its operation id with the given reason', async () => {
    const lanes = new InstanceLanes();
    const running = lanes.run('i1', { signal: new AbortController().signal, operationId: 'op' }, never);
    const reason = new Error('cancelled');
    await Promise.resolve();
    expect(lanes.cancel('op', reason)).toBe(true);
    await expect(running).rejects.toBe(reason);
    expect(lanes.cancel('op', reason)).toBe(false);
  });
});
