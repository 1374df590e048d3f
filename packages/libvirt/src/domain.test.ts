import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Connection,
  type Domain,
  DomainState,
  LibvirtClosedError,
  ListDomainsFlags,
  UndefineFlags,
  VirErrorNumber,
} from './index.js';
import { libvirtEnv, testDomainXml, uniqueName } from './libvirt-env.test-helper.js';

const available = await libvirtEnv('test');

describe.skipIf(!available)('Domain on test:///default', () => {
  let conn: Connection;
  beforeAll(async () => {
    conn = await Connection.open('test:///default');
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('defines, starts, suspends, resumes, shuts down, destroys and undefines a domain', async () => {
    const name = uniqueName('life');
    const d = await conn.defineXML(testDomainXml(name, 96));
    expect(d.name).toBe(name);
    expect(d.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await d.isPersistent()).toBe(true);
    expect(await d.isActive()).toBe(false);
    expect(d.id()).toBeUndefined();
    expect((await d.info()).state).toBe(DomainState.Shutoff);

    await d.start();
    const info = await d.info();
    expect(info).toMatchObject({
      state: DomainState.Running,
      stateName: 'running',
      vcpus: 1,
      maxMemoryKiB: 96 * 1024,
    });
    expect(d.id()).toBeGreaterThan(0);
    await d.suspend();
    expect((await d.state()).state).toBe(DomainState.Paused);
    await d.resume();
    expect((await d.state()).state).toBe(DomainState.Running);
    await d.reboot();
    await d.shutdown();
    expect((await d.state()).state).toBe(DomainState.Shutoff);
    await d.start();
    await d.destroy();
    expect(await d.isActive()).toBe(false);
    expect(await d.xml()).toContain(`<name>${name}</name>`);

    const byUuid = await conn.lookupByUUID(d.uuid);
    expect(byUuid.name).toBe(name);
    await byUuid.free();

    await d.undefine();
    const gone = await conn.lookupByName(name).catch((e: unknown) => e);
    expect((gone as { details: { code: number } }).details.code).toBe(VirErrorNumber.NoDomain);
    await d.free();
    await d.free(); // idempotent
    await expect(d.start()).rejects.toBeInstanceOf(LibvirtClosedError);
  });

  it('creates a transient domain that disappears when destroyed', async () => {
    const name = uniqueName('transient');
    const d = await conn.createXML(testDomainXml(name));
    expect(await d.isActive()).toBe(true);
    expect(await d.isPersistent()).toBe(false);
    await d.destroy();
    const err = await conn.lookupByName(name).catch((e: unknown) => e);
    expect((err as { details: { code: number } }).details.code).toBe(VirErrorNumber.NoDomain);
    await d.free();
  });

  it('lists all domains with flags', async () => {
    const name = uniqueName('list');
    const d = await conn.defineXML(testDomainXml(name));
    try {
      const names = async (flags: number) => {
        const ds = await conn.listAllDomains(flags);
        const r = ds.map((x) => x.name);
        await Promise.all(ds.map((x) => x.free()));
        return r;
      };
      expect(await names(0)).toEqual(expect.arrayContaining(['test', name]));
      expect(await names(ListDomainsFlags.Inactive)).toContain(name);
      expect(await names(ListDomainsFlags.Active)).not.toContain(name);
    } finally {
      await d.undefine();
      await d.free();
    }
  });

  it('saves a running domain to its managed save image and restores it on start', async () => {
    const name = uniqueName('msave');
    const d: Domain = await conn.defineXML(testDomainXml(name));
    await d.start();
    await d.managedSave();
    expect(await d.hasManagedSaveImage()).toBe(true);
    expect((await d.state()).state).toBe(DomainState.Shutoff);
    await d.start(); // restores from the image
    expect((await d.state()).state).toBe(DomainState.Running);
    expect(await d.hasManagedSaveImage()).toBe(false);
    await d.managedSave();
    await d.removeManagedSave();
    expect(await d.hasManagedSaveImage()).toBe(false);
    await d.start(); // boots afresh
    await d.managedSave();
    // undefine refuses a domain with a managed save image unless told to remove it
    const refused = await d.undefine().catch((e: unknown) => e);
    expect((refused as { details: { code: number } }).details.code).toBe(VirErrorNumber.OperationInvalid);
    await d.undefine(UndefineFlags.ManagedSave);
    await d.free();
  });
});
