import { describe, expect, it } from 'vitest';
import { MigrateFlags, migrateParameters } from './index.js';
import { libvirtEnv } from './libvirt-env.test-helper.js';
import { loadLibvirtNative } from './native.js';
import { decodeTypedParams, NativeTypedParams, typedParamsToRecord } from './typed-params.js';

const available = await libvirtEnv('test');

describe('migrateParameters', () => {
  it('maps the options to libvirt’s parameter names and types', () => {
    expect(
      migrateParameters({
        flags: MigrateFlags.Live,
        migrateUri: 'tcp://127.0.0.1:49152',
        listenAddress: '127.0.0.1',
        bandwidthMiBs: 100,
        migrateDisks: ['vda', 'vdb'],
        extra: [{ name: 'auto_converge.initial', type: 'int', value: 20 }],
      }),
    ).toEqual([
      { name: 'migrate_uri', type: 'string', value: 'tcp://127.0.0.1:49152' },
      { name: 'listen_address', type: 'string', value: '127.0.0.1' },
      { name: 'bandwidth', type: 'ullong', value: 100 },
      { name: 'migrate_disks', type: 'string', value: 'vda' },
      { name: 'migrate_disks', type: 'string', value: 'vdb' },
      { name: 'auto_converge.initial', type: 'int', value: 20 },
    ]);
  });
});

describe.skipIf(!available)('typed parameters through libvirt', () => {
  it('round-trips every type through virTypedParamsAdd* and the struct decoder', async () => {
    const native = await loadLibvirtNative();
    const params = new NativeTypedParams(native).add([
      { name: 'i', type: 'int', value: -7 },
      { name: 'u', type: 'uint', value: 4_000_000_000 },
      { name: 'l', type: 'llong', value: -(2n ** 62n) },
      { name: 'ul', type: 'ullong', value: 2n ** 63n + 5n },
      { name: 'small', type: 'ullong', value: 1234 },
      { name: 'd', type: 'double', value: 2.5 },
      { name: 'b', type: 'boolean', value: true },
      { name: 's', type: 'string', value: 'tcp://127.0.0.1:49152' },
    ]);
    try {
      expect(params.length).toBe(8);
      const back = decodeTypedParams(native, params.pointer!, params.length);
      expect(typedParamsToRecord(back)).toEqual({
        i: -7,
        u: 4_000_000_000,
        l: -(2n ** 62n),
        ul: 2n ** 63n + 5n,
        small: 1234,
        d: 2.5,
        b: true,
        s: 'tcp://127.0.0.1:49152',
      });
      expect(back.map((p) => p.type)).toEqual([
        'int',
        'uint',
        'llong',
        'ullong',
        'ullong',
        'double',
        'boolean',
        'string',
      ]);
    } finally {
      params.free();
      params.free();
    }
  });
});
