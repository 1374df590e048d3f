import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorAttributor } from './error-attribution.js';
import { Connection, isLibvirtError, LibvirtError, type RawVirError, VirErrorNumber } from './index.js';
import { libvirtEnv } from './libvirt-env.test-helper.js';

const raw = (code: number, message = `e${code}`): RawVirError => ({
  code,
  domain: 0,
  message,
  level: 2,
  str1: null,
  str2: null,
  str3: null,
  int1: 0,
  int2: 0,
});

describe('ErrorAttributor', () => {
  it('gives a lone failing call its error', () => {
    const a = new ErrorAttributor();
    const x = a.begin();
    a.report(raw(42));
    expect(a.end(x, true)).toEqual({ error: raw(42), attribution: 'certain' });
    expect(a.pendingCount).toBe(0);
  });

  it('is certain when the other calls in flight succeed', () => {
    const a = new ErrorAttributor();
    const x = a.begin();
    const y = a.begin();
    const z = a.begin();
    a.report(raw(42)); // candidates x, y, z
    expect(a.end(y, false).error).toBeUndefined();
    expect(a.end(z, false).error).toBeUndefined();
    expect(a.end(x, true)).toEqual({ error: raw(42), attribution: 'certain' });
  });

  it('prefers the error only this call could have raised', () => {
    const a = new ErrorAttributor();
    const x = a.begin();
    a.report(raw(1)); // only x in flight: x's
    const y = a.begin();
    a.report(raw(2)); // x or y
    expect(a.end(y, true)).toEqual({ error: raw(2), attribution: 'certain' });
    expect(a.end(x, true)).toEqual({ error: raw(1), attribution: 'certain' });
  });

  it('marks both errors ambiguous when two calls fail while both in flight', () => {
    const a = new ErrorAttributor();
    const x = a.begin();
    const y = a.begin();
    a.report(raw(1));
    a.report(raw(2));
    expect(a.end(x, true)).toEqual({ error: raw(1), attribution: 'ambiguous' });
    expect(a.end(y, true)).toEqual({ error: raw(2), attribution: 'ambiguous' });
  });

  it('drops errors no failing call took, and attributes synchronous calls directly', () => {
    const a = new ErrorAttributor();
    const x = a.begin();
    a.report(raw(7));
    a.end(x, false);
    expect(a.pendingCount).toBe(0);
    const s = a.begin(true);
    a.report(raw(8));
    expect(a.end(s, true)).toEqual({ error: raw(8), attribution: 'certain' });
  });
});

const available = await libvirtEnv('test');

describe.skipIf(!available)('errors raised on libuv worker threads', () => {
  let conn: Connection;
  beforeAll(async () => {
    conn = await Connection.open('test:///default');
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('decodes VIR_ERR_NO_DOMAIN for a missing domain', async () => {
    const err = await conn.lookupByName('no-such-domain').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(isLibvirtError(err, VirErrorNumber.NoDomain)).toBe(true);
    expect((err as LibvirtError).details).toMatchObject({
      operation: 'virDomainLookupByName',
      code: VirErrorNumber.NoDomain,
      codeName: 'VIR_ERR_NO_DOMAIN',
      domainName: 'VIR_FROM_TEST',
      level: 2,
      attribution: 'certain',
    });
  });

  it('keeps errors apart under concurrent calls: every failure is its own, every success succeeds', async () => {
    const calls = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0
        ? conn.lookupByName(`missing-${i}`).then(
            () => 'found' as const,
            (e: unknown) => e,
          )
        : conn.lookupByName('test').then(async (d) => {
            await d.free();
            return 'found' as const;
          }),
    );
    const results = await Promise.all(calls);
    results.forEach((r, i) => {
      if (i % 2 === 1) expect(r).toBe('found');
      else expect(isLibvirtError(r, VirErrorNumber.NoDomain)).toBe(true);
    });
    // two different failures at once keep their own codes
    const [a, b] = await Promise.all([
      conn.lookupByName('missing-a').catch((e: unknown) => e),
      conn.lookupByUUID('00000000-0000-0000-0000-00000000000x').catch((e: unknown) => e),
    ]);
    expect((a as LibvirtError).details.operation).toBe('virDomainLookupByName');
    expect((b as LibvirtError).details.operation).toBe('virDomainLookupByUUIDString');
    const codes = [(a as LibvirtError).details.code, (b as LibvirtError).details.code].sort();
    expect(codes).toEqual([VirErrorNumber.InvalidArg, VirErrorNumber.NoDomain].sort());
  });
});
