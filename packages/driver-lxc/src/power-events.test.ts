import type { DriverInstance, PowerStateEvent } from '@nova-lfs/core';
import { describe, expect, it } from 'vitest';
import { PowerPoller } from './power-events.js';

describe('PowerPoller (unit)', () => {
  const setup = () => {
    let listed: DriverInstance[] = [];
    let gate: Promise<void> = Promise.resolve();
    const poller = new PowerPoller(async () => {
      const now = listed;
      await gate;
      return now;
    }, 60_000);
    const events: PowerStateEvent[] = [];
    return {
      poller,
      events,
      set: (l: DriverInstance[]) => {
        listed = l;
      },
      hold: () => {
        let release!: () => void;
        gate = new Promise((r) => {
          release = r;
        });
        return release;
      },
    };
  };

  it('emits changes after a baseline, and nostate for a vanished guest', async () => {
    const { poller, events, set } = setup();
    const sub = poller.events$.subscribe((e) => events.push(e));
    set([{ instanceId: 'a', powerState: 'running' }]);
    await poller.pollOnce(); // baseline
    set([{ instanceId: 'a', powerState: 'shutdown' }]);
    await poller.pollOnce();
    set([]);
    await poller.pollOnce();
    expect(events.map((e) => [e.instanceId, e.powerState])).toEqual([
      ['a', 'shutdown'],
      ['a', 'nostate'],
    ]);
    sub.unsubscribe();
    poller.close();
  });

  it("does not emit the driver's own changes, nor readings of a poll that overlapped its call", async () => {
    const { poller, events, set, hold } = setup();
    const sub = poller.events$.subscribe((e) => events.push(e));
    set([{ instanceId: 'a', powerState: 'running' }]);
    await poller.pollOnce();
    // a poll reads 'paused' while the driver's own pause is in progress
    const end = poller.begin('a');
    set([{ instanceId: 'a', powerState: 'paused' }]);
    const release = hold();
    const polling = poller.pollOnce();
    poller.noteOwn('a', 'paused');
    end();
    release();
    await polling;
    await poller.pollOnce(); // still paused: what the driver noted
    expect(events).toEqual([]);
    sub.unsubscribe();
    poller.close();
  });
});
