import { describe, expect, it, vi } from 'vitest';
import {
  DeadlineExceededError,
  DriverError,
  ErrorCode,
  InvalidStateError,
  NotFoundError,
} from '../errors.js';
import type { Instance } from '../model/instance.js';
import type { FakeOperation } from '../testing/fake-driver.js';
import { type FakeHold, holdNextCall } from '../testing/hold.js';
import { cloudWithInstance, MemoryNetwork, MemoryVolumes } from '../testing/memory-adapters.js';

// The failure paths of an attach, for both kinds of device: what each leaves in the guest, at the
// adapter and in the record, and how many times the adapter was asked to release the device.

/** The attach deadline of these tests (`timeouts.power`), in ms: the held calls outlive it. */
const DEADLINE_MS = 300;

/** One kind of device as these tests drive it. */
interface KindCase {
  readonly name: string;
  readonly plug: FakeOperation;
  open(): Promise<World>;
}

interface World {
  readonly compute: Awaited<ReturnType<typeof cloudWithInstance>>['compute'];
  readonly vm: Instance;
  readonly driver: Awaited<ReturnType<typeof cloudWithInstance>>['driver'];
  /** Attaches the device these tests use (`key`). */
  attach(): Promise<Instance>;
  /** Attaches `unknownKey`, a device the adapter does not know. */
  attachUnknown(): Promise<Instance>;
  readonly unknownKey: string;
  /** Holds the adapter's next acquire until released. */
  holdAcquire(): FakeHold;
  readonly key: string;
  /** The devices the instance records: [key, attaching]. */
  recorded(i: Instance): Array<[string, boolean]>;
  /** The devices plugged into the guest. */
  inGuest(): string[];
  /** The devices the adapter holds for the instance. */
  held(): string[];
  /** How many times the adapter was asked to release `id`. */
  releases(id: string): number;
}

const engine = { timeouts: { power: DEADLINE_MS } as never };
const count = (list: readonly string[], id: string) => list.filter((x) => x === id).length;

const kinds: KindCase[] = [
  {
    name: 'volume',
    plug: 'attachVolume',
    async open() {
      const volumes = new MemoryVolumes(['vol-1']);
      const { compute, vm, driver } = await cloudWithInstance({ volumes, engine });
      return {
        compute,
        vm,
        driver,
        key: 'vol-1',
        unknownKey: 'vol-x',
        attach: () => compute.attachVolume(vm.id, { volumeId: 'vol-1' }),
        attachUnknown: () => compute.attachVolume(vm.id, { volumeId: 'vol-x' }),
        holdAcquire: () => holdNextCall(volumes, 'connect'),
        recorded: (i) => (i.volumes ?? []).map((v) => [v.volumeId, v.attaching === true]),
        inGuest: () => Object.keys(driver.guest(vm.id)?.volumes ?? {}),
        held: () => volumes.connectedTo(vm.id),
        releases: (id) => count(volumes.released, id),
      };
    },
  },
  {
    name: 'interface',
    plug: 'attachInterface',
    async open() {
      const network = new MemoryNetwork(['net-a']);
      network.precreate('port-1', 'net-a');
      const { compute, vm, driver } = await cloudWithInstance({ network, engine });
      return {
        compute,
        vm,
        driver,
        key: 'port-1',
        unknownKey: 'port-x',
        attach: () => compute.attachInterface(vm.id, { portId: 'port-1' }),
        attachUnknown: () => compute.attachInterface(vm.id, { portId: 'port-x' }),
        holdAcquire: () => holdNextCall(network, 'allocate'),
        recorded: (i) => (i.ports ?? []).map((p) => [p.portId, p.attaching === true]),
        inGuest: () => Object.keys(driver.guest(vm.id)?.interfaces ?? {}),
        held: () => network.boundTo(vm.id),
        releases: (id) => count(network.released, id),
      };
    },
  },
];

/** What a failed attach must leave: no task, the fault, nothing recorded, held or plugged in. */
async function expectNothingLeft(w: World, fault: string): Promise<void> {
  const after = await w.compute.get(w.vm.id);
  expect(after).toMatchObject({ vmState: 'active', taskState: null, fault: { code: fault } });
  expect(w.recorded(after)).toEqual([]);
  expect(w.held()).toEqual([]);
  expect(w.inGuest()).toEqual([]);
}

describe.each(kinds)('a failed $name attach', (kind) => {
  it('asks the adapter to release nothing when the adapter refuses the device (it acquired nothing)', async () => {
    const w = await kind.open();
    await expect(w.attachUnknown()).rejects.toBeInstanceOf(NotFoundError);
    await expectNothingLeft(w, ErrorCode.NotFound);
    expect(w.releases(w.unknownKey)).toBe(0);
    await w.compute.close();
  });

  it('releases the device once when the driver fails to plug it in', async () => {
    const w = await kind.open();
    w.driver.failNext(kind.plug, { times: 1, message: 'hot-plug refused' });
    await expect(w.attach()).rejects.toBeInstanceOf(DriverError);
    await expectNothingLeft(w, ErrorCode.Driver);
    expect(w.releases(w.key)).toBe(1);
    // the next attempt works
    expect(w.recorded(await w.attach())).toEqual([[w.key, false]]);
    await w.compute.close();
  });

  it('releases the device once, never recorded nor plugged in, when the deadline passes while the adapter acquires it', async () => {
    const w = await kind.open();
    const acquire = w.holdAcquire();
    await expect(w.attach()).rejects.toBeInstanceOf(DeadlineExceededError);
    await acquire.reached;
    // the task ended with the deadline's fault; the adapter has not answered yet
    await expectNothingLeft(w, ErrorCode.DeadlineExceeded);
    expect(w.releases(w.key)).toBe(0);
    acquire.release();
    await vi.waitFor(() => expect(w.releases(w.key)).toBe(1));
    await expectNothingLeft(w, ErrorCode.DeadlineExceeded);
    expect(w.driver.calls[kind.plug]).toBeUndefined();
    // a later attach of the same device goes through, and nothing else was released meanwhile
    expect(w.recorded(await w.attach())).toEqual([[w.key, false]]);
    expect(w.releases(w.key)).toBe(1);
    await w.compute.close();
  });

  for (const late of ['plugs it in', 'fails'] as const) {
    it(`keeps the device marked past the deadline while the driver plugs, then undoes it once when the driver ${late}`, async () => {
      const w = await kind.open();
      const plug = w.driver.holdNext(kind.plug);
      await expect(w.attach()).rejects.toBeInstanceOf(DeadlineExceededError);
      await plug.reached;
      // what an operator sees: the attach ended in error with the deadline's fault
      const ended = await w.compute.get(w.vm.id);
      expect(ended).toMatchObject({ taskState: null, fault: { code: ErrorCode.DeadlineExceeded } });
      expect((await w.compute.listActions(w.vm.id)).at(-1)).toMatchObject({
        result: 'error',
        fault: { code: ErrorCode.DeadlineExceeded },
      });
      // the device stays recorded as attaching, and held, until the driver answers
      expect(w.recorded(ended)).toEqual([[w.key, true]]);
      expect(w.held()).toEqual([w.key]);
      expect(w.releases(w.key)).toBe(0);
      // meanwhile the instance takes no other action, and the reconciliation leaves the mark alone
      await expect(w.compute.powerOff(w.vm.id)).rejects.toBeInstanceOf(InvalidStateError);
      const report = await w.compute.reconcile('periodic');
      expect(report.undoneAttaches).toEqual([]);
      expect(w.recorded(await w.compute.get(w.vm.id))).toEqual([[w.key, true]]);

      if (late === 'fails') w.driver.failNext(kind.plug, { times: 1, message: 'hot-plug refused' });
      plug.release();
      await vi.waitFor(async () => expect(w.recorded(await w.compute.get(w.vm.id))).toEqual([]));
      await expectNothingLeft(w, ErrorCode.DeadlineExceeded);
      expect(w.releases(w.key)).toBe(1);
      // unplugged whatever the late answer (a late failure says nothing of the guest)
      expect(w.driver.calls[kind.plug === 'attachVolume' ? 'detachVolume' : 'detachInterface']).toBe(1);
      // the instance takes actions again, and the device can be attached again
      expect(w.recorded(await w.attach())).toEqual([[w.key, false]]);
      expect(w.inGuest()).toEqual([w.key]);
      await w.compute.close();
    });
  }

  it('lets a delete end an instance whose late plug has not answered; the late answer leaves nothing', async () => {
    const w = await kind.open();
    const plug = w.driver.holdNext(kind.plug);
    await expect(w.attach()).rejects.toBeInstanceOf(DeadlineExceededError);
    await plug.reached;
    await w.compute.delete(w.vm.id);
    expect(w.held()).toEqual([]);
    expect(w.driver.hasGuest(w.vm.id)).toBe(false);
    plug.release();
    // the late plug finds no guest; the undo writes nothing to a record that is gone
    await vi.waitFor(() => expect(w.driver.calls[kind.plug]).toBe(1));
    await expect(w.compute.get(w.vm.id)).rejects.toBeInstanceOf(NotFoundError);
    expect(w.held()).toEqual([]);
    await w.compute.close();
  });
});
