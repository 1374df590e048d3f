import { describe, expect, it } from 'vitest';
import { createCompute } from '../compose/create-compute.js';
import { ConfigurationError, ErrorCode } from '../errors.js';
import { parseStorageOption, type StorageOption } from './storage.js';

describe('storage option', () => {
  it.each<StorageOption>([
    'memory',
    'sqlite',
    { kind: 'sqlite' },
    { kind: 'sqlite', dataDir: './data' },
    { kind: 'sqlite', path: '/tmp/x.sqlite' },
    { kind: 'postgres' },
    { kind: 'postgres', url: 'postgres://u@127.0.0.1/db', schema: 'nova_lfs', statementTimeoutMs: 0 },
    { kind: 'postgres', staleReservationMs: 1000 },
  ])('accepts %j', (option) => {
    expect(parseStorageOption(option)).toEqual(option);
  });

  it.each<[unknown, string]>([
    ['bogus', '"bogus"'],
    ['postgresql', '"postgresql"'],
    ['SQLite', '"SQLite"'],
    [{ kind: 'sqllite' }, '"sqllite"'],
    [{ kind: 'postgresql', url: 'postgres://x' }, '"postgresql"'],
    [{ kind: 'sqlite', datadir: './data' }, 'datadir'],
    [{ kind: 'postgres', url: '' }, 'storage.url'],
    [{ kind: 'postgres', schema: 'a"; drop schema public; --' }, 'storage.schema'],
    [{ kind: 'postgres', statementTimeoutMs: -1 }, 'storage.statementTimeoutMs'],
    [{ kind: 'postgres', statementTimeoutMs: 1.5 }, 'storage.statementTimeoutMs'],
    [{ kind: 'postgres', staleReservationMs: 0 }, 'storage.staleReservationMs'],
    [{ kind: 'postgres', staleReservationMs: 999 }, 'storage.staleReservationMs'],
    [{ kind: 'postgres', staleReservationMs: '30000' }, 'storage.staleReservationMs'],
    [{}, '{}'],
    [null, 'null'],
    [42, '42'],
  ])('refuses %j with a ConfigurationError naming what was given and what is accepted', (option, named) => {
    let error: unknown;
    try {
      parseStorageOption(option);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toMatchObject({ code: ErrorCode.Configuration, details: { setting: 'storage' } });
    const message = (error as Error).message;
    expect(message).toContain(named);
    expect(message).toContain("accepted: 'memory', 'sqlite'");
    expect(message).toContain("{ kind: 'postgres'");
  });

  it('createCompute refuses a mistyped storage before opening or importing anything', async () => {
    for (const storage of ['bogus', 'postgresql', { kind: 'sqllite' }]) {
      await expect(createCompute({ storage: storage as StorageOption })).rejects.toMatchObject({
        code: ErrorCode.Configuration,
        details: { setting: 'storage' },
      });
    }
  });
});
