import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { firstValueFrom, take, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection, DomainEventStoppedDetail, DomainEventType, type DomainLifecycleEvent } from './index.js';
import { libvirtEnv, testDomainXml, uniqueName } from './libvirt-env.test-helper.js';

const available = await libvirtEnv('test');
const here = dirname(fileURLToPath(import.meta.url));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(!available)('lifecycle events on test:///default', () => {
  let conn: Connection;
  beforeAll(async () => {
    conn = await Connection.open('test:///default');
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('delivers defined, started, suspended, resumed, stopped and undefined, in order', async () => {
    const name = uniqueName('ev');
    const seen: DomainLifecycleEvent[] = [];
    const sub = await conn.subscribeLifecycle((e) => {
      if (e.domainName === name) seen.push(e);
    });
    const d = await conn.defineXML(testDomainXml(name));
    await d.start();
    await d.suspend();
    await d.resume();
    await d.destroy();
    await d.undefine();
    await until(() => seen.length >= 6);
    expect(seen.map((e) => e.eventName)).toEqual([
      'defined',
      'started',
      'suspended',
      'resumed',
      'stopped',
      'undefined',
    ]);
    expect(seen[4]).toMatchObject({
      event: DomainEventType.Stopped,
      detail: DomainEventStoppedDetail.Destroyed,
    });
    expect(seen.every((e) => e.domainUuid === d.uuid)).toBe(true);
    await d.free();

    // after deregistration nothing more arrives
    await sub.close();
    await sub.close();
    const other = await conn.defineXML(testDomainXml(name));
    await other.undefine();
    await other.free();
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toHaveLength(6);
  });

  it('scopes a subscription to one domain and serves an Observable', async () => {
    const a = await conn.defineXML(testDomainXml(uniqueName('ev-a')));
    const b = await conn.defineXML(testDomainXml(uniqueName('ev-b')));
    try {
      const events = firstValueFrom(conn.lifecycleEvents({ domain: a }).pipe(take(2), toArray()));
      // let the registration land before acting
      await new Promise((r) => setTimeout(r, 50));
      await b.start();
      await a.start();
      await b.destroy();
      await a.destroy();
      const got = await events;
      expect(got.map((e) => [e.domainName, e.eventName])).toEqual([
        [a.name, 'started'],
        [a.name, 'stopped'],
      ]);
    } finally {
      await a.undefine();
      await b.undefine();
    }
  });

  it('lets the process exit once its last connection is closed (the loop stops)', async () => {
    const script = join(here, 'lifecycle-exit.test-helper.ts');
    const started = Date.now();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--conditions=@nova-lfs/source', '--import', 'tsx', script],
      { timeout: 20_000, cwd: join(here, '..') },
    );
    expect(stdout.trim()).toBe('events 2, closed');
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
