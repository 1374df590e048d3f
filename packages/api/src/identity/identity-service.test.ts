import { afterEach, describe, expect, it } from 'vitest';
import { ApiFault } from '../http/api-fault.js';
import type { AuthRequest } from './auth-request.js';
import {
  adminPassword,
  cheapHasher,
  fileDb,
  memoryDb,
  openIdentity,
  testClock,
  testUrls,
} from './identity.test-helper.js';
import type { IdentityService } from './identity-service.js';
import { tokenBody } from './token-view.js';

const password = (name: string, pw: string, scope?: AuthRequest['scope']): AuthRequest => ({
  identity: {
    methods: ['password'],
    password: { user: { name, domain: { name: 'Default' }, password: pw } },
  },
  ...(scope === undefined ? {} : { scope }),
});
const project = (name: string): AuthRequest['scope'] => ({ project: { name, domain: { id: 'default' } } });

async function rejects401(p: Promise<unknown>): Promise<ApiFault> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ApiFault);
  expect((e as ApiFault).status).toBe(401);
  return e as ApiFault;
}

describe('identity service', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });
  const open = async (options: Parameters<typeof openIdentity>[1] = {}) => {
    const db = memoryDb();
    const clock = testClock();
    const identity = await openIdentity(db, { clock: clock.fn, ...options });
    cleanup.push(async () => {
      await identity.close();
      await db.destroy();
    });
    return { db, clock, identity };
  };

  it('issues a project token and validates it into the caller with effective roles', async () => {
    const { identity, clock } = await open();
    const { token, info } = await identity.issue(password('admin', adminPassword, project('admin')));
    const auth = await identity.validate(token);
    expect(auth).toMatchObject({
      userName: 'admin',
      userDomainId: 'default',
      projectName: 'admin',
      projectDomainId: 'default',
      domainId: null,
      system: false,
    });
    expect([...auth.roles].sort()).toEqual(['admin', 'member', 'reader']);
    expect(auth.auditId).toBe(info.payload.auditIds[0]);
    expect(auth.expiresAt - clock.now).toBe(3600_000);
    const body = tokenBody(info, identity.catalog());
    expect(body.catalog).toEqual(identity.catalog());
    expect((body.catalog as { type: string }[]).map((c) => c.type)).toEqual(['compute', 'image', 'identity']);
  });

  it('answers the same 401 for a wrong password, an unknown user and a disabled user', async () => {
    const { identity } = await open();
    const u = await identity.createUser({ name: 'dora', domainId: 'default', password: 'pw-dora-1' });
    await identity.updateUser(u.id, { enabled: false });
    const faults = [
      await rejects401(identity.issue(password('admin', 'wrong'))),
      await rejects401(identity.issue(password('nobody', adminPassword))),
      await rejects401(identity.issue(password('dora', 'pw-dora-1'))),
    ];
    expect(new Set(faults.map((f) => f.message)).size).toBe(1);
  });

  it('revokes a token at once, though it was cached', async () => {
    const { identity } = await open();
    const { token } = await identity.issue(password('admin', adminPassword, project('admin')));
    await identity.validate(token);
    await identity.validate(token); // served from the cache
    await identity.revokeToken(token);
    await rejects401(identity.validate(token));
  });

  it('refuses an expired token (the clock moves, no sleep)', async () => {
    const { identity, clock } = await open({ tokenTtlSeconds: 600 });
    const { token } = await identity.issue(password('admin', adminPassword, project('admin')));
    await identity.validate(token);
    clock.advance(599_999);
    await identity.validate(token);
    clock.advance(1);
    await rejects401(identity.validate(token));
  });

  it('re-scopes an unscoped token with the token method, keeping its expiry and audit chain', async () => {
    const { identity, clock } = await open();
    const first = await identity.issue(password('admin', adminPassword, 'unscoped'));
    expect(first.info.project).toBeNull();
    expect(first.info.roles).toEqual([]);
    clock.advance(10_000);
    const second = await identity.issue({
      identity: { methods: ['token'], token: { id: first.token } },
      scope: project('admin'),
    });
    expect(second.info.project?.name).toBe('admin');
    expect(second.info.payload.expiresAt).toBe(first.info.payload.expiresAt);
    expect(second.info.payload.auditIds[1]).toBe(first.info.payload.auditIds[0]);
    expect(second.info.payload.methods).toEqual(['token', 'password']);
    // revoking the original also ends the token re-scoped from it
    await identity.revokeToken(first.token);
    await rejects401(identity.validate(second.token));
  });

  it('scopes by a role held through a group, and loses it at once when the membership goes', async () => {
    const { identity } = await open();
    const p = await identity.createProject({ name: 'team', domainId: 'default' });
    const u = await identity.createUser({ name: 'gus', domainId: 'default', password: 'pw-gus-1' });
    const g = await identity.createGroup({ name: 'devs', domainId: 'default' });
    await rejects401(identity.issue(password('gus', 'pw-gus-1', project('team'))));
    const member = (await identity.roles.get({ name: 'member' }))!;
    await identity.grant({
      actorType: 'group',
      actorId: g.id,
      targetType: 'project',
      targetId: p.id,
      roleId: member.id,
    });
    await identity.addUserToGroup(g.id, u.id);
    const { token } = await identity.issue(password('gus', 'pw-gus-1', project('team')));
    expect([...(await identity.validate(token)).roles].sort()).toEqual(['member', 'reader']);
    await identity.removeUserFromGroup(g.id, u.id);
    await rejects401(identity.validate(token));
  });

  it('revokes every token of a user whose password changes or who is disabled', async () => {
    const { identity } = await open();
    const p = await identity.createProject({ name: 'p', domainId: 'default' });
    const u = await identity.createUser({ name: 'pat', domainId: 'default', password: 'pw-pat-1' });
    const reader = (await identity.roles.get({ name: 'reader' }))!;
    await identity.grant({
      actorType: 'user',
      actorId: u.id,
      targetType: 'project',
      targetId: p.id,
      roleId: reader.id,
    });
    const before = await identity.issue(password('pat', 'pw-pat-1', project('p')));
    await identity.validate(before.token);
    await identity.changePassword(u.id, 'pw-pat-1', 'pw-pat-2');
    await rejects401(identity.validate(before.token));
    await rejects401(identity.issue(password('pat', 'pw-pat-1')));
    // a token issued right after (the same millisecond on this clock) is valid
    const after = await identity.issue(password('pat', 'pw-pat-2', project('p')));
    await identity.validate(after.token);
    await identity.updateUser(u.id, { enabled: false });
    await rejects401(identity.validate(after.token));
  });

  it('keeps users, projects and tokens over a restart; the same admin password changes nothing', async () => {
    const { db, path } = fileDb();
    const clock = testClock();
    const first = await openIdentity(db, { clock: clock.fn });
    const { token } = await first.issue(password('admin', adminPassword, project('admin')));
    const u = await first.createUser({ name: 'rest', domainId: 'default', password: 'pw-rest-1' });
    await first.close();
    await db.destroy();

    const again = fileDb(path);
    const second = await openIdentity(again.db, { clock: clock.fn });
    cleanup.push(async () => {
      await second.close();
      await again.db.destroy();
    });
    expect((await second.validate(token)).userName).toBe('admin');
    expect((await second.backend.getUser({ id: u.id }))?.name).toBe('rest');
    expect((await second.projects.list({ name: 'admin' })).length).toBe(1);
  });

  it('follows keystone-manage bootstrap: another admin password at start resets it and revokes old tokens', async () => {
    const { db, path } = fileDb();
    const clock = testClock();
    const first = await openIdentity(db, { clock: clock.fn });
    const { token } = await first.issue(password('admin', adminPassword, project('admin')));
    await first.close();
    await db.destroy();
    const again = fileDb(path);
    const second = await openIdentity(again.db, { clock: clock.fn, adminPassword: 'a-new-admin-pw' });
    cleanup.push(async () => {
      await second.close();
      await again.db.destroy();
    });
    await rejects401(second.validate(token));
    await rejects401(second.issue(password('admin', adminPassword)));
    await second.issue(password('admin', 'a-new-admin-pw', project('admin')));
  });

  it('rotates signing keys: tokens of the previous keys validate until their key retires', async () => {
    const { identity } = await open();
    const old = await identity.issue(password('admin', adminPassword, project('admin')));
    const newKey = await identity.rotateKeys({ keep: 2 });
    const fresh = await identity.issue(password('admin', adminPassword, project('admin')));
    expect(fresh.info.payload.keyId).toBe(newKey);
    expect(old.info.payload.keyId).not.toBe(newKey);
    await identity.validate(old.token);
    await identity.validate(fresh.token);
    await identity.rotateKeys({ keep: 2 }); // the oldest key retires
    await rejects401(identity.validate(old.token));
    await identity.validate(fresh.token);
  });

  it('refuses tampered and foreign tokens', async () => {
    const { identity } = await open();
    const { token } = await identity.issue(password('admin', adminPassword, project('admin')));
    const [body, sig] = token.split('.') as [string, string];
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
    payload.u = 'someone-else';
    const forged = `${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${sig}`;
    await rejects401(identity.validate(forged));
    await rejects401(identity.validate('garbage'));
    await rejects401(identity.validate('x'.repeat(5000)));
    const other = await open();
    const foreign = await other.identity.issue(password('admin', adminPassword, project('admin')));
    await rejects401(identity.validate(foreign.token));
  });

  it('scopes to the system and to a domain only with a role there', async () => {
    const { identity } = await open();
    const system = await identity.issue(password('admin', adminPassword, { system: { all: true } }));
    expect((await identity.validate(system.token)).system).toBe(true);
    await rejects401(identity.issue(password('admin', adminPassword, { domain: { id: 'default' } })));
    const admin = (await identity.roles.get({ name: 'admin' }))!;
    await identity.grant({
      actorType: 'user',
      actorId: system.info.user.id,
      targetType: 'domain',
      targetId: 'default',
      roleId: admin.id,
    });
    const domain = await identity.issue(password('admin', adminPassword, { domain: { name: 'Default' } }));
    expect((await identity.validate(domain.token)).domainId).toBe('default');
    const fault = await identity
      .issue({ identity: { methods: ['token'], token: { id: system.token } }, scope: project('admin') })
      .catch((e: unknown) => e);
    expect((fault as ApiFault).status).toBe(403);
  });

  it('scopes a request without scope to the default project, as Keystone does', async () => {
    const { identity } = await open();
    const p = await identity.createProject({ name: 'home', domainId: 'default' });
    const u = await identity.createUser({
      name: 'hal',
      domainId: 'default',
      password: 'pw-hal-1',
      defaultProjectId: p.id,
    });
    expect((await identity.issue(password('hal', 'pw-hal-1'))).info.project).toBeNull();
    const member = (await identity.roles.get({ name: 'member' }))!;
    await identity.grant({
      actorType: 'user',
      actorId: u.id,
      targetType: 'project',
      targetId: p.id,
      roleId: member.id,
    });
    expect((await identity.issue(password('hal', 'pw-hal-1'))).info.project?.id).toBe(p.id);
    expect((await identity.issue(password('hal', 'pw-hal-1', 'unscoped'))).info.project).toBeNull();
  });

  it('stores passwords only as scrypt hashes', async () => {
    const { identity, db } = await open();
    await identity.createUser({ name: 'sec', domainId: 'default', password: 'pw-visible-if-leaked' });
    const rows = await (db as never as import('kysely').Kysely<import('./identity-tables.js').IdentityTables>)
      .selectFrom('identity_user')
      .selectAll()
      .execute();
    const text = JSON.stringify(rows);
    expect(text).not.toContain('pw-visible-if-leaked');
    expect(text).not.toContain(adminPassword);
    expect(rows.every((r) => r.password_hash?.startsWith('scrypt$'))).toBe(true);
  });
});

// runs where the tests' PostgreSQL is configured (scripts/test.sh sets NOVA_LFS_PG_URL and starts
// the server); defined only then, so nothing is reported skipped elsewhere
const pgUrl = process.env.NOVA_LFS_PG_URL;
if (pgUrl)
  describe('identity service on PostgreSQL', () => {
    const url = pgUrl;
    it('issues, validates, rotates and revokes tokens in a fresh schema', async () => {
      const { openPostgres } = await import('@nova-lfs/store-sql');
      const { sql } = await import('kysely');
      const schema = `t_identity_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
      const pg = await openPostgres(url, { schema, poolSize: 4 });
      const db = pg.db as never as import('kysely').Kysely<object>;
      let identity: IdentityService | undefined;
      try {
        identity = await openIdentity(db, { hasher: cheapHasher(), urls: testUrls });
        const { token } = await identity.issue(password('admin', adminPassword, project('admin')));
        expect((await identity.validate(token)).projectName).toBe('admin');
        await identity.rotateKeys();
        await identity.validate(token);
        // a second service on the same schema (another process) validates it and sees the revocation
        const other = await openIdentity(db, { hasher: cheapHasher(), urls: testUrls, cache: { ttlMs: 0 } });
        expect((await other.validate(token)).userName).toBe('admin');
        await identity.revokeToken(token);
        await rejects401(identity.validate(token));
        await rejects401(other.validate(token));
        await other.close();
      } finally {
        await identity?.close();
        await sql.raw(`drop schema if exists "${schema}" cascade`).execute(db);
        await pg.close();
      }
    });
  });
