import { describe, expect, it } from 'vitest';
import { KvmLiveMigrationRefusedError } from './live-migration-errors.js';
import { decodeTargetParams, encodeTargetParams } from './migration-target.js';

const params = {
  uri: 'qemu+unix:///system?socket=/s',
  hostId: 'b',
  instanceDir: '/state/b/i',
  migrateUri: 'tcp://127.0.0.1',
  listenAddress: '127.0.0.1',
  storageProbe: '/state/b/i/.probe',
  storageToken: 'tok',
};

describe('migration target params', () => {
  it('round-trip through the plain string record of MigrationTarget.params', () => {
    const target = { hostId: 'b', driverKind: 'kvm', sameHost: false, params: encodeTargetParams(params) };
    expect(decodeTargetParams(target)).toEqual(params);
  });

  it('refuse a target of another driver kind, and one missing a field, naming it', () => {
    const other = { hostId: 'd', driverKind: 'docker', sameHost: false, params: encodeTargetParams(params) };
    const e1 = (() => {
      try {
        decodeTargetParams(other, 'i');
      } catch (e) {
        return e;
      }
    })() as KvmLiveMigrationRefusedError;
    expect(e1).toBeInstanceOf(KvmLiveMigrationRefusedError);
    expect(e1.details).toMatchObject({
      reason: 'driver-kind',
      instanceId: 'i',
      destinationHostId: 'd',
      retryable: false,
    });
    const { listenAddress: _l, ...rest } = params;
    const e2 = (() => {
      try {
        decodeTargetParams({ hostId: 'b', driverKind: 'kvm', sameHost: false, params: rest });
      } catch (e) {
        return e;
      }
    })() as KvmLiveMigrationRefusedError;
    expect(e2.details).toMatchObject({ reason: 'invalid-target', field: 'params.listenAddress' });
    expect(e2.code).toBe('NLFS_DRIVER_ERROR');
  });
});
