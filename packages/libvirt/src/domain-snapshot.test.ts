import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Connection,
  DomainState,
  LibvirtClosedError,
  SnapshotRevertFlags,
  UndefineFlags,
  VirErrorNumber,
} from './index.js';
import { libvirtEnv, testDomainXml, uniqueName } from './libvirt-env.test-helper.js';

const available = await libvirtEnv('test');

describe.skipIf(!available)('snapshots on test:///default', () => {
  let conn: Connection;
  beforeAll(async () => {
    conn = await Connection.open('test:///default');
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('creates, lists, looks up, reverts to and deletes snapshots', async () => {
    const d = await conn.defineXML(testDomainXml(uniqueName('snap')));
    try {
      await d.start();
      const s1 = await d.createSnapshot('<domainsnapshot><name>s1</name></domainsnapshot>');
      expect(s1.name).toBe('s1');
      expect(s1.domainName).toBe(d.name);
      expect(await s1.xml()).toContain('<name>s1</name>');
      await d.destroy();
      const s2 = await d.createSnapshot('<domainsnapshot><name>s2</name></domainsnapshot>');
      const all = await d.listSnapshots();
      expect(all.map((s) => s.name).sort()).toEqual(['s1', 's2']);
      await Promise.all(all.map((s) => s.free()));
      expect((await d.currentSnapshot()).name).toBe('s2');

      // s1 was taken while running: reverting to it runs the domain again
      await s1.revert();
      expect((await d.state()).state).toBe(DomainState.Running);
      await s2.revert(SnapshotRevertFlags.Force);
      expect((await d.state()).state).toBe(DomainState.Shutoff);

      const found = await d.lookupSnapshot('s1');
      await found.delete();
      await expect(found.xml()).rejects.toBeInstanceOf(LibvirtClosedError);
      const missing = await d.lookupSnapshot('s1').catch((e: unknown) => e);
      expect((missing as { details: { code: number } }).details.code).toBe(VirErrorNumber.NoDomainSnapshot);
      expect((await d.listSnapshots()).map((s) => s.name)).toEqual(['s2']);
    } finally {
      await d.destroy().catch(() => {});
      await d.undefine(UndefineFlags.SnapshotsMetadata);
    }
  });
});
