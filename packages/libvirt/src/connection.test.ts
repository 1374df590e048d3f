import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Connection,
  LibvirtClosedError,
  LibvirtError,
  LibvirtErrorCode,
  libvirtVersion,
  threadPoolSize,
  VirErrorDomain,
  VirErrorNumber,
} from './index.js';
import { libvirtEnv, testDomainXml, uniqueName } from './libvirt-env.test-helper.js';

const available = await libvirtEnv('test');

describe.skipIf(!available)('Connection on test:///default', () => {
  let conn: Connection;
  beforeAll(async () => {
    conn = await Connection.open('test:///default');
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('reports hostname, capabilities, node info and versions', async () => {
    expect((await conn.hostname()).length).toBeGreaterThan(0);
    expect(await conn.capabilities()).toContain('<capabilities>');
    const node = await conn.nodeInfo();
    expect(node.cpus).toBeGreaterThan(0);
    expect(node.memoryKiB).toBeGreaterThan(0);
    expect(node.model.length).toBeGreaterThan(0);
    const lib = await libvirtVersion();
    expect(lib.major).toBeGreaterThanOrEqual(9);
    expect((await conn.libVersion()).encoded).toBe(lib.encoded);
    expect(await conn.type()).toBe('TEST');
    expect(await conn.canonicalUri()).toBe('test:///default');
    expect(threadPoolSize()).toBeGreaterThanOrEqual(1);
  });

  it('lists the test driver’s built-in domain', async () => {
    const all = await conn.listAllDomains();
    expect(all.map((d) => d.name)).toContain('test');
    await Promise.all(all.map((d) => d.free()));
  });

  it('refuses changes on a read-only connection with VIR_ERR_OPERATION_DENIED', async () => {
    const ro = await Connection.open('test:///default', { readOnly: true });
    try {
      expect(ro.readOnly).toBe(true);
      const d = await ro.lookupByName('test');
      expect(d.name).toBe('test');
      const err = await ro.defineXML(testDomainXml(uniqueName('ro'))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LibvirtError);
      expect((err as LibvirtError).details).toMatchObject({
        operation: 'virDomainDefineXMLFlags',
        code: VirErrorNumber.OperationDenied,
        codeName: 'VIR_ERR_OPERATION_DENIED',
      });
    } finally {
      await ro.close();
    }
  });

  it('fails to open an unknown URI with a typed error', async () => {
    const err = await Connection.open('nosuchdriver:///x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).code).toBe(LibvirtErrorCode.Call);
    expect((err as LibvirtError).details.operation).toBe('virConnectOpen');
    expect((err as LibvirtError).details.code).toBe(VirErrorNumber.NoConnect);
    expect((err as LibvirtError).details.level).toBe(2);
  });

  it('closes idempotently, frees what it made, and refuses calls afterwards', async () => {
    const c = await Connection.open('test:///default');
    const d = await c.lookupByName('test');
    await Promise.all([c.close(), c.close()]);
    expect(c.closed).toBe(true);
    expect(d.freed).toBe(true);
    expect(c.lastCloseRefs).toBe(0);
    const err = await c.hostname().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtClosedError);
    expect((err as LibvirtClosedError).details).toEqual({ handle: 'connection', name: 'test:///default' });
    const err2 = await d.info().catch((e: unknown) => e);
    expect((err2 as LibvirtClosedError).code).toBe(LibvirtErrorCode.Closed);
    expect(VirErrorDomain.Test).toBe(12);
  });
});
