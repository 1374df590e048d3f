import { NoValidHostError } from '@nova-lfs/core';
import { MemoryClaimStore } from '@nova-lfs/core/ports';
import { container } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import { createScheduler, registerScheduler, schedulerPluginsToken } from './create-scheduler.js';
import { DuplicatePluginError, UnknownPluginError } from './errors.js';
import type { HostState } from './host-state.js';
import type { FilterPlugin } from './plugin.js';
import type { ExplainedSelection } from './plugin-scheduler.js';
import { spreadProfile } from './profile.js';
import { Success, unschedulable } from './status.js';
import { flavor, host, request, seeded } from './test-fixtures.test-helper.js';

describe('PluginScheduler placement', () => {
  it('counts an instance with two claims on one host (a resize onto its own host) until both are released', async () => {
    const s = createScheduler({ random: seeded(3) });
    s.upsertHost(host('h'));
    const first = request(flavor(1, 1024));
    const old = (await s.claim('h', first))!;
    const resized = (await s.claim('h', { ...first, requestId: 'resize', flavor: flavor(2, 2048) }))!;
    expect(s.hostState('h')!.instanceCount).toBe(1);
    expect(s.hostState('h')!.used).toMatchObject({ VCPU: 3 });
    // a revert releases the new claim: the instance is still on the host with the old one
    await s.release(resized);
    expect(s.hostState('h')!.instanceCount).toBe(1);
    expect(s.hostState('h')!.used).toMatchObject({ VCPU: 1 });
    await s.release(old);
    expect(s.hostState('h')!.instanceCount).toBe(0);
    // a confirm releases the old claim first
    const again = (await s.claim('h', first))!;
    const bigger = (await s.claim('h', { ...first, requestId: 'resize-2', flavor: flavor(2, 2048) }))!;
    await s.release(again);
    expect(s.hostState('h')!.instanceCount).toBe(1);
    await s.release(bigger);
    expect(s.hostState('h')!.instanceCount).toBe(0);
  });

  it('spreads onto the emptiest host by default and packs onto the fullest in binpack mode', async () => {
    for (const [profile, expected] of [
      ['spread', 'empty'],
      ['binpack', 'busy'],
    ] as const) {
      const s = createScheduler({ profile, random: seeded(1) });
      s.upsertHost(host('empty'));
      s.upsertHost(host('busy'));
      expect(await s.claim('busy', request(flavor(8, 32_768)))).toBeDefined();
      for (let i = 0; i < 3; i++) {
        const [sel] = await s.select(request(flavor(1, 1024)));
        expect(sel!.hostId).toBe(expected);
      }
    }
  });

  it('claims resources, returns alternates and persists claims; release restores the host', async () => {
    const claims = new MemoryClaimStore();
    const s = createScheduler({ claims, random: seeded(2) });
    for (const id of ['a', 'b', 'c', 'd']) s.upsertHost(host(id));
    const [sel] = await s.select(request(flavor(4, 8192)));
    expect(sel!.alternateHostIds).toHaveLength(2);
    expect(sel!.alternateHostIds).not.toContain(sel!.hostId);
    expect(await claims.list()).toEqual([sel!.claim]);
    expect(s.hostState(sel!.hostId)!.used).toMatchObject({ VCPU: 4, MEMORY_MB: 8192 });
    await s.release(sel!.claim);
    await s.release(sel!.claim);
    expect(s.hostState(sel!.hostId)!.used).toMatchObject({ VCPU: 0, MEMORY_MB: 0 });
    expect(await claims.list()).toEqual([]);
  });

  it('places a multi-instance request all or nothing', async () => {
    const s = createScheduler();
    s.upsertHost(host('a', { vcpus: 8 }));
    s.upsertHost(host('b', { vcpus: 8 }));
    const ok = await s.select(request(flavor(4, 1024), 4));
    expect(ok).toHaveLength(4);
    const err = await s.select(request(flavor(1, 1024), 2)).catch((e) => e);
    expect(err).toBeInstanceOf(NoValidHostError);
    expect(s.hostState('a')!.used.VCPU! + s.hostState('b')!.used.VCPU!).toBe(16);
  });

  it('spreads an anti-affinity request over distinct hosts and keeps affinity on one host', async () => {
    const s = createScheduler({ random: seeded(3) });
    for (const id of ['a', 'b', 'c']) s.upsertHost(host(id));
    const anti = await s.select(
      request(flavor(1, 512), 3, { group: { id: 'g', policy: 'anti-affinity', memberHostIds: [] } }),
    );
    expect(new Set(anti.map((x) => x.hostId)).size).toBe(3);
    const err = await s
      .select(
        request(flavor(1, 512), 1, {
          group: { id: 'g', policy: 'anti-affinity', memberHostIds: ['a', 'b', 'c'] },
        }),
      )
      .catch((e) => e);
    expect(err.details.rejections.ServerGroup).toEqual({
      'anti-affinity: a group member is on this host': 3,
    });
    const aff = await s.select(
      request(flavor(1, 512), 3, { group: { id: 'h', policy: 'affinity', memberHostIds: ['b'] } }),
    );
    expect(aff.map((x) => x.hostId)).toEqual(['b', 'b', 'b']);
  });

  it('honours zones, traits, aggregates, tenancy, image properties, capabilities and hints', async () => {
    const s = createScheduler({ random: seeded(4) });
    s.upsertHost(host('z1', { availabilityZone: 'az1' }));
    s.upsertHost(host('gpu', { traits: ['CUSTOM_GPU'], availabilityZone: 'az2' }));
    s.upsertHost(
      host('ssd', {
        aggregates: [{ id: 'ag', name: 'ssd', metadata: { ssd: 'true' } }],
        availabilityZone: 'az2',
      }),
    );
    s.upsertHost(
      host('private', {
        aggregates: [{ id: 'pt', name: 'pt', metadata: { filter_tenant_id: 'p9' } }],
        availabilityZone: 'az3',
      }),
    );
    s.upsertHost(
      host('arm', { architecture: 'aarch64', availabilityZone: 'az4', capabilities: ['suspend'] }),
    );
    const place = async (f = flavor(1, 512), extra = {}) => {
      const [sel] = await s.select(request(f, 1, extra));
      s.buildFinished(sel!.claim);
      return sel!.hostId;
    };
    expect(await place(flavor(1, 512), { availabilityZone: 'az1' })).toBe('z1');
    expect(await place(flavor(1, 512, 10, { 'trait:CUSTOM_GPU': 'required' }))).toBe('gpu');
    expect(await place(flavor(1, 512, 10, { 'aggregate_instance_extra_specs:ssd': 'true' }))).toBe('ssd');
    expect(await place(flavor(1, 512), { projectId: 'p9', availabilityZone: 'az3' })).toBe('private');
    expect(await place(flavor(1, 512, 10, { 'capabilities:suspend': 'true' }))).toBe('arm');
    const armImage = { ...request(flavor(1, 1)).image, properties: { architecture: 'aarch64' } };
    expect(await place(flavor(1, 512), { image: armImage })).toBe('arm');
    expect(await place(flavor(1, 512), { sameHostIds: ['ssd'] })).toBe('ssd');
    for (let i = 0; i < 10; i++) {
      expect(await place(flavor(1, 512), { differentHostIds: ['z1', 'gpu', 'ssd'] })).toBe('arm');
    }
    const err = await s
      .select(
        request(flavor(1, 512, 10, { 'trait:CUSTOM_GPU': 'forbidden' }), 1, {
          projectId: 'p1',
          availabilityZone: 'az3',
        }),
      )
      .catch((e) => e);
    expect(err.details.rejections).toEqual({
      AvailabilityZone: { 'not in the requested availability zone': 4 },
      TenantIsolation: { 'host reserved for other projects': 1 },
    });
  });

  it('limits builds in flight per host until they finish', async () => {
    const s = createScheduler({ maxInFlightBuilds: 2 });
    s.upsertHost(host('only'));
    const a = await s.select(request(flavor(1, 256)));
    await s.select(request(flavor(1, 256)));
    const err = await s.select(request(flavor(1, 256))).catch((e) => e);
    expect(err.details.rejections).toEqual({ MaxInFlightBuilds: { 'max builds in flight reached': 1 } });
    s.buildFinished(a[0]!.claim);
    expect((await s.select(request(flavor(1, 256))))[0]!.hostId).toBe('only');
  });

  it('explains a failed placement: hosts considered and how many each filter rejected, by reason', async () => {
    const s = createScheduler();
    s.upsertHost(host('small-1', { vcpus: 2 }));
    s.upsertHost(host('small-2', { vcpus: 2 }));
    s.upsertHost(host('tiny-ram', { ramMb: 512 }));
    s.upsertHost(host('off', { enabled: false }));
    s.upsertHost(host('dead', { up: false }));
    const err = (await s.select(request(flavor(4, 1024))).catch((e) => e)) as NoValidHostError;
    expect(err).toBeInstanceOf(NoValidHostError);
    expect(err.code).toBe('NLFS_NO_VALID_HOST');
    expect(err.details).toEqual({
      hostsConsidered: 5,
      requested: 1,
      rejections: {
        HostAvailable: { 'host disabled': 1, 'host down': 1 },
        Resources: { 'insufficient VCPU': 2, 'insufficient MEMORY_MB': 1 },
      },
    });
  });

  it('returns per-host verdicts and scores when asked to explain', async () => {
    const s = createScheduler();
    s.upsertHost(host('big', { ramMb: 131_072 }));
    s.upsertHost(host('mid'));
    s.upsertHost(host('off', { enabled: false }));
    const [sel] = (await s.select(request(flavor(1, 1024), 1, { explain: true }))) as ExplainedSelection[];
    const ex = sel!.explanation!;
    expect(ex.chosen).toBe('big');
    expect(sel!.hostId).toBe('big');
    const off = ex.hosts.find((h) => h.hostId === 'off')!;
    expect(off).toMatchObject({ passed: false, rejectedBy: 'HostAvailable', reasons: ['host disabled'] });
    const big = ex.hosts.find((h) => h.hostId === 'big')!;
    expect(big.scores!.RamScorer).toEqual({ raw: 131_072, normalized: 1, weighted: 1 });
    expect(ex.rejections).toEqual({ HostAvailable: { 'host disabled': 1 } });
  });
});

describe('plugin registry and profiles', () => {
  const onlyEven: FilterPlugin = {
    name: 'OnlyEven',
    filter: (_ctx, h: HostState) => (Number(h.id.slice(1)) % 2 === 0 ? Success : unschedulable('odd host')),
  };

  it('refuses a plugin registered twice and a profile naming an unknown plugin', () => {
    expect(() => createScheduler({ plugins: [onlyEven, onlyEven] })).toThrow(DuplicatePluginError);
    expect(() => createScheduler({ plugins: [{ ...onlyEven, name: 'Resources' }] })).toThrow(
      DuplicatePluginError,
    );
    const err = (() => {
      try {
        createScheduler({ profile: { ...spreadProfile, filters: ['Nope'] } });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UnknownPluginError);
    expect((err as UnknownPluginError).details).toEqual({
      plugin: 'Nope',
      kind: 'filter',
      profile: 'spread',
    });
  });

  it('runs a user filter added through DI', async () => {
    const c = container.createChildContainer();
    c.register(schedulerPluginsToken, { useValue: [onlyEven] });
    const factory = registerScheduler(c, {
      profile: { ...spreadProfile, filters: [...spreadProfile.filters, 'OnlyEven'] },
    });
    const s = factory({ claims: new MemoryClaimStore(), hosts: undefined as never });
    for (let i = 0; i < 6; i++) s.upsertHost(host(`h${i}`));
    for (let i = 0; i < 10; i++) {
      const [sel] = await s.select(request(flavor(1, 256)));
      expect(Number(sel!.hostId.slice(1)) % 2).toBe(0);
    }
    const err = await s.select(request(flavor(1, 256), 1, { sameHostIds: ['h1'] })).catch((e) => e);
    expect(err.details.rejections.SameHost).toEqual({ 'not the host of the same_host instances': 5 });
  });
});

describe('scale structure', () => {
  it('routes by zone to the right cell and does not scan every host under sampling', async () => {
    let visited = 0;
    const counting: FilterPlugin = {
      name: 'Counting',
      filter: () => {
        visited++;
        return Success;
      },
    };
    const s = createScheduler({
      plugins: [counting],
      profile: { ...spreadProfile, filters: ['Counting', ...spreadProfile.filters] },
      random: seeded(5),
    });
    for (let i = 0; i < 10_000; i++) {
      s.upsertHost(
        host(`h${i}`, { cell: i < 5000 ? 'cell-a' : 'cell-b', availabilityZone: i < 5000 ? 'az-a' : 'az-b' }),
      );
    }
    expect(s.cellSizes()).toEqual({ 'cell-a': 5000, 'cell-b': 5000 });
    const [sel] = await s.select(request(flavor(1, 1024), 1, { availabilityZone: 'az-b' }));
    expect(Number(sel!.hostId.slice(1))).toBeGreaterThanOrEqual(5000);
    expect(visited).toBeLessThan(50);
    for (let i = 0; i < 20; i++) {
      const [inA] = await s.select(request(flavor(1, 1024), 1, { hints: { cell: 'cell-a' } }));
      expect(Number(inA!.hostId.slice(1))).toBeLessThan(5000);
    }
    const noCell = await s.select(request(flavor(1, 1024), 1, { hints: { cell: 'cell-z' } })).catch((e) => e);
    expect(noCell.details).toMatchObject({ hostsConsidered: 0 });
    visited = 0;
    const ex = createScheduler({ profile: { ...spreadProfile, sampling: { mode: 'exhaustive' } } });
    for (let i = 0; i < 100; i++) ex.upsertHost(host(`h${i}`));
    expect((await ex.select(request(flavor(1, 1024), 1, { explain: true })))[0]).toBeDefined();
  });

  it('skips hosts whose free memory cannot hold the request without visiting them', async () => {
    let visited = 0;
    const counting: FilterPlugin = {
      name: 'Counting',
      filter: () => {
        visited++;
        return Success;
      },
    };
    const s = createScheduler({
      plugins: [counting],
      profile: {
        ...spreadProfile,
        filters: ['Counting', ...spreadProfile.filters],
        sampling: { mode: 'exhaustive' },
      },
    });
    for (let i = 0; i < 1000; i++) s.upsertHost(host(`small${i}`, { ramMb: 2048 }));
    s.upsertHost(host('big', { ramMb: 262_144 }));
    const [sel] = await s.select(request(flavor(1, 65_536)));
    expect(sel!.hostId).toBe('big');
    expect(visited).toBe(1);
  });
});
