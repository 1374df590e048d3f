import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QuotaExceededError, ValidationError } from '../errors.js';
import { createFakeCloud } from '../testing/engine-fixture.js';
import { internalsOf } from '../testing/internals.js';
import { CountingQuotaEngine } from './counting-quota-engine.js';

describe('CountingQuotaEngine', () => {
  it('names the resource, limit, usage and request when a reservation does not fit', async () => {
    const q = new CountingQuotaEngine({ instances: 10, cores: 4, ramMb: 8192 });
    const r = await q.reserve('p', { instances: 1, cores: 3, ramMb: 1024 });
    await q.commit(r);
    await q.reserve('p', { instances: 1, cores: 1, ramMb: 1024 });
    const err = await q.reserve('p', { instances: 1, cores: 2, ramMb: 1024 }).catch((e) => e);
    expect(err).toBeInstanceOf(QuotaExceededError);
    expect(err.code).toBe('NLFS_QUOTA_EXCEEDED');
    expect(err.details).toEqual({
      projectId: 'p',
      resource: 'cores',
      limit: 4,
      inUse: 3,
      reserved: 1,
      requested: 2,
    });
  });

  it('treats -1 as unlimited, isolates projects and applies per-project limits', async () => {
    const q = new CountingQuotaEngine({ instances: 1, cores: -1, ramMb: -1 });
    await q.reserve('a', { instances: 1, cores: 1000, ramMb: 1e9 });
    await q.reserve('b', { instances: 1, cores: 1, ramMb: 1 });
    await expect(q.reserve('a', { instances: 1, cores: 1, ramMb: 1 })).rejects.toBeInstanceOf(
      QuotaExceededError,
    );
    await q.setLimits('a', { instances: 3 });
    await expect(q.reserve('a', { instances: 2, cores: 1, ramMb: 1 })).resolves.toBeDefined();
  });

  it('commit and rollback are idempotent; release returns usage', async () => {
    const q = new CountingQuotaEngine({ instances: 2, cores: 10, ramMb: 10 });
    const r = await q.reserve('p', { instances: 2, cores: 2, ramMb: 2 });
    await q.commit(r);
    await q.commit(r);
    await q.rollback(r);
    expect((await q.usage('p')).inUse).toEqual({ instances: 2, cores: 2, ramMb: 2 });
    await q.release('p', { instances: 1, cores: 1, ramMb: 1 });
    expect((await q.usage('p')).inUse).toEqual({ instances: 1, cores: 1, ramMb: 1 });
    const r2 = await q.reserve('p', { instances: 1, cores: 1, ramMb: 1 });
    await q.rollback(r2);
    await q.rollback(r2);
    expect((await q.usage('p')).reserved).toEqual({ instances: 0, cores: 0, ramMb: 0 });
  });

  it.each([
    [{ instances: Number.NaN, cores: 1, ramMb: 1 }, ['instances']],
    [{}, ['instances', 'cores', 'ramMb']],
    [{ instances: -5, cores: 1, ramMb: 1 }, ['instances']],
    [{ instances: 1, cores: 1.5, ramMb: 1 }, ['cores']],
    [{ instances: 1, cores: 1, ramMb: Number.POSITIVE_INFINITY }, ['ramMb']],
    [{ instances: 1, cores: 1, ramMb: 2 ** 53 }, ['ramMb']],
    [{ instances: '5', cores: 1, ramMb: 1 }, ['instances']],
    [{ instances: 1, cores: 1, ramMb: 1, ram: 5 }, ['ram']],
  ])('refuses the defaults %j with a ValidationError naming %j', async (defaults, fields) => {
    const construct = () => new CountingQuotaEngine(defaults as never);
    expect(construct).toThrow(ValidationError);
    const err = (() => {
      try {
        construct();
      } catch (e) {
        return e as ValidationError;
      }
    })();
    expect(err?.fields.sort()).toEqual([...fields].sort());
    const q = new CountingQuotaEngine({ instances: 2, cores: 2, ramMb: 2 });
    expect(() => q.setDefaults(defaults as never)).toThrow(ValidationError);
    await expect(q.usage('p')).resolves.toMatchObject({ limits: { instances: 2, cores: 2, ramMb: 2 } });
  });

  it('refuses bad project limits naming the field, and changes nothing', async () => {
    const q = new CountingQuotaEngine({ instances: 2, cores: 2, ramMb: 2 });
    for (const [limits, field] of [
      [{ instances: Number.NaN }, 'instances'],
      [{ cores: -5 }, 'cores'],
      [{ ramMb: 0.5 }, 'ramMb'],
      [{ instances: Number.NEGATIVE_INFINITY }, 'instances'],
      [{ instance: 5 }, 'instance'],
    ] as const) {
      const err = await q.setLimits('p', limits as never).catch((e) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect(err.fields).toEqual([field]);
    }
    expect((await q.usage('p')).limits).toEqual({ instances: 2, cores: 2, ramMb: 2 });
    await q.setLimits('p', { instances: -1 });
    await expect(q.reserve('p', { instances: 50, cores: 1, ramMb: 1 })).resolves.toBeDefined();
  });

  it('refuses a project id with a NUL byte or control characters', async () => {
    const q = new CountingQuotaEngine();
    for (const projectId of ['a\u0000b', 'a\nb', '', 'x'.repeat(256)]) {
      for (const call of [() => q.usage(projectId), () => q.setLimits(projectId, { instances: 1 })]) {
        const err = await call().catch((e) => e);
        expect(err).toBeInstanceOf(ValidationError);
        expect([...new Set(err.fields)]).toEqual(['projectId']);
      }
    }
    expect(q.trackedProjects).toBe(0);
  });

  it('answers the usage of unknown projects from the defaults without remembering them', async () => {
    const q = new CountingQuotaEngine({ instances: 3, cores: 4, ramMb: 5 });
    for (let i = 0; i < 1000; i++) {
      expect(await q.usage(`ghost-${i}`)).toEqual({
        projectId: `ghost-${i}`,
        limits: { instances: 3, cores: 4, ramMb: 5 },
        inUse: { instances: 0, cores: 0, ramMb: 0 },
        reserved: { instances: 0, cores: 0, ramMb: 0 },
      });
      await q.release(`ghost-${i}`, { instances: 1, cores: 1, ramMb: 1 });
    }
    expect(q.trackedProjects).toBe(0);
  });

  it('forgets a project once it holds nothing, but keeps one with limits of its own', async () => {
    const q = new CountingQuotaEngine();
    const r = await q.reserve('a', { instances: 1, cores: 1, ramMb: 1 });
    await q.rollback(r);
    const r2 = await q.reserve('b', { instances: 1, cores: 1, ramMb: 1 });
    await q.commit(r2);
    expect(q.trackedProjects).toBe(1);
    await q.release('b', { instances: 1, cores: 1, ramMb: 1 });
    expect(q.trackedProjects).toBe(0);
    await q.setLimits('c', { instances: 1 });
    await q.resync(new Map());
    expect(q.trackedProjects).toBe(1);
    expect((await q.usage('c')).limits.instances).toBe(1);
  });

  it('never admits beyond the limit whatever the interleaving (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.record({ n: fc.integer({ min: 1, max: 4 }), commit: fc.boolean() }), { maxLength: 40 }),
        async (limit, requests) => {
          const q = new CountingQuotaEngine({ instances: limit, cores: -1, ramMb: -1 });
          const results = await Promise.allSettled(
            requests.map(async (r) => {
              const res = await q.reserve('p', { instances: r.n, cores: 0, ramMb: 0 });
              await (r.commit ? q.commit(res) : q.rollback(res));
              return r.commit ? r.n : 0;
            }),
          );
          const admitted = results.reduce((s, r) => s + (r.status === 'fulfilled' ? r.value : 0), 0);
          const u = await q.usage('p');
          expect(admitted).toBeLessThanOrEqual(limit);
          expect(u.inUse.instances).toBe(admitted);
          expect(u.reserved.instances).toBe(0);
        },
      ),
    );
  });
});

describe('quota through the engine', () => {
  it('admits exactly as many of N concurrent creates as the limit allows', async () => {
    const cloud = await createFakeCloud({
      hosts: 4,
      quota: { instances: 7, cores: 100, ramMb: 1_000_000 },
      driver: { latencyMs: { spawn: 5 } },
    });
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => cloud.compute.create(cloud.request({ name: `vm-${i}` }))),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    expect(ok).toHaveLength(7);
    expect(refused).toHaveLength(23);
    for (const r of refused) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(QuotaExceededError);
    expect(await cloud.compute.list()).toHaveLength(7);
    const usage = await internalsOf(cloud.compute).quota.usage('p1');
    expect(usage.inUse.instances).toBe(7);
    expect(usage.reserved.instances).toBe(0);
  });

  it('counts a multi-instance request as a whole and creates nothing when it does not fit', async () => {
    const cloud = await createFakeCloud({ quota: { instances: 5, cores: 100, ramMb: 1_000_000 } });
    await cloud.compute.create(cloud.request({ count: 3 }));
    const err = await cloud.compute.create(cloud.request({ count: 3 })).catch((e) => e);
    expect(err).toBeInstanceOf(QuotaExceededError);
    expect(err.details).toMatchObject({ resource: 'instances', limit: 5, inUse: 3, requested: 3 });
    expect(await cloud.compute.list()).toHaveLength(3);
  });
});
