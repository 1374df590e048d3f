import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditCluster,
  Cluster,
  type ControlPlane,
  call,
  clusterAvailable,
  create,
  createdId,
  expectConsistent,
  type ServerView,
  settled,
  show,
  waitFor,
} from './cluster.test-helper.js';

/**
 * Issue 13 with issue 15: instances move between hosts whose agents are separate processes (FAKE
 * drivers persisting their guests; a live-migrated guest is handed over through the destination
 * agent's hand-off directory). A live migration to a named host and a cold migration with its
 * confirm, through the API of a control plane on PostgreSQL and NATS.
 */
describe.skipIf(!clusterAvailable)('moves between agent processes', () => {
  const tag = randomUUID().slice(0, 6);
  const cluster = new Cluster(['a', 'b'].map((n) => ({ hostId: `mv${n}-${tag}` })));
  let cp: ControlPlane;

  beforeAll(async () => {
    await cluster.startAgents();
    cp = await cluster.startPlane('A');
    await cluster.uploadImage(cp);
  }, 90_000);

  afterAll(() => cluster.close(), 60_000);

  const action = async (id: string, body: unknown, status = 202) => {
    const r = await call(cp, 'POST', `/v2.1/servers/${id}/action`, body);
    expect(r.status, await r.clone().text()).toBe(status);
  };
  const until = (id: string, what: string, ok: (s: ServerView) => boolean) =>
    waitFor(
      what,
      async () => {
        const s = await show(cp, id);
        if (s !== 'gone' && s.status === 'ERROR')
          throw new Error(`${id} went ERROR: ${JSON.stringify(s.fault)}`);
        return s !== 'gone' && s['OS-EXT-STS:task_state'] === null && ok(s) ? s : undefined;
      },
      30_000,
    );

  it("live-migrates a running server to the other agent and back; the guest moves between the agents' state", async () => {
    const id = await createdId(await create(cp, cluster.imageId, 'live'));
    const placed = await settled(cp, id);
    expect(placed.status).toBe('ACTIVE');
    const source = placed['OS-EXT-SRV-ATTR:host']!;
    const dest = cluster.hostIds.find((h) => h !== source)!;
    expect(cluster.guestsOf(source)).toContain(id);

    await action(id, { 'os-migrateLive': { host: dest, block_migration: false } });
    await until(id, 'the live migration', (s) => s.status === 'ACTIVE' && s['OS-EXT-SRV-ATTR:host'] === dest);
    expect(cluster.guestsOf(source)).not.toContain(id);
    await waitFor('the destination agent to adopt the guest', async () =>
      cluster.guestsOf(dest).includes(id) ? true : undefined,
    );

    await action(id, { 'os-migrateLive': { host: source, block_migration: false } });
    await until(id, 'the way back', (s) => s.status === 'ACTIVE' && s['OS-EXT-SRV-ATTR:host'] === source);
    const migrations = await call(cp, 'GET', `/v2.1/os-migrations?instance_uuid=${id}`);
    const list = ((await migrations.json()) as { migrations: { status: string; migration_type: string }[] })
      .migrations;
    expect(list.map((m) => [m.migration_type, m.status])).toEqual([
      ['live-migration', 'completed'],
      ['live-migration', 'completed'],
    ]);
  }, 90_000);

  it('cold-migrates to the other agent and confirms; nothing leaks', async () => {
    const id = await createdId(await create(cp, cluster.imageId, 'cold'));
    const source = (await settled(cp, id))['OS-EXT-SRV-ATTR:host']!;
    await action(id, { migrate: null });
    const moved = await until(id, 'the cold migration', (s) => s.status === 'VERIFY_RESIZE');
    expect(moved['OS-EXT-SRV-ATTR:host']).not.toBe(source);
    await action(id, { confirmResize: null }, 204);
    await until(id, 'the confirm', (s) => s.status === 'ACTIVE');
    expect(cluster.guestsOf(moved['OS-EXT-SRV-ATTR:host']!)).toContain(id);
    expect(cluster.guestsOf(source)).not.toContain(id);
    expectConsistent(await auditCluster(cluster.schema));
  }, 90_000);
});
