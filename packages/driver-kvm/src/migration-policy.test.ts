import { MigrateFlags } from '@nova-lfs/libvirt';
import { describe, expect, it } from 'vitest';
import { migrationFlags, migrationParameters } from './migration-policy.js';

const base =
  MigrateFlags.Live | MigrateFlags.PersistDest | MigrateFlags.UndefineSource | MigrateFlags.AbortOnError;

describe('migration policy', () => {
  it('always migrates live, persists on the destination and undefines the source; managed direct (no peer-to-peer)', () => {
    expect(migrationFlags({ storage: 'none' })).toBe(base);
    expect(migrationFlags({ storage: 'none' }) & MigrateFlags.PeerToPeer).toBe(0);
  });

  it('adds POSTCOPY only when allowed at the start, UNSAFE only for shared storage', () => {
    expect(migrationFlags({ storage: 'none', allowPostCopy: true })).toBe(base | MigrateFlags.Postcopy);
    expect(migrationFlags({ storage: 'shared' })).toBe(base | MigrateFlags.Unsafe);
  });

  it("passes the destination's migrate_uri, listen_address, XML and a whole MiB/s bandwidth", () => {
    const target = {
      uri: 'qemu:///system',
      hostId: 'b',
      instanceDir: '/d',
      migrateUri: 'tcp://127.0.0.1',
      listenAddress: '127.0.0.1',
      storageProbe: '/d/p',
      storageToken: 't',
    };
    const o = migrationParameters(target, {
      storage: 'none',
      destinationXml: '<domain/>',
      persistentXml: '<domain><p/></domain>',
      bandwidthMiBps: 0.4,
    });
    expect(o).toEqual({
      flags: base,
      migrateUri: 'tcp://127.0.0.1',
      listenAddress: '127.0.0.1',
      destinationXml: '<domain/>',
      persistentXml: '<domain><p/></domain>',
      bandwidthMiBs: 1,
    });
    expect(
      migrationParameters(target, { storage: 'none', destinationXml: 'x', persistentXml: 'y' }),
    ).not.toHaveProperty('bandwidthMiBs');
  });
});
