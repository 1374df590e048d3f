import { once } from 'node:events';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { ErrorCode, isNovaError } from '@nova-lfs/core';
import { Client } from 'ldapts';
import { afterEach, describe, expect, it } from 'vitest';
import { toApiFault } from '../http/api-fault.js';
import {
  activeDirectoryMapping,
  type LdapBackendOptions,
  LdapIdentityBackend,
  LdapUnavailableError,
  openLdapMapping,
} from './ldap-backend.js';

const LDAP_URL = process.env.NOVA_LFS_LDAP_URL ?? 'ldap://127.0.0.1:10389';
const ADMIN_DN = 'cn=admin,dc=nova,dc=test';
const ADMIN_PW = 'nova-ldap-admin';

async function slapdAnswers(): Promise<boolean> {
  const c = new Client({ url: LDAP_URL, connectTimeout: 2000, timeout: 2000 });
  try {
    await c.bind(ADMIN_DN, ADMIN_PW);
    return true;
  } catch {
    return false;
  } finally {
    await c.unbind().catch(() => undefined);
  }
}

const available = await slapdAnswers();
if (!available) {
  const reason = `slapd does not answer on ${LDAP_URL}; start it with: bash scripts/services/start-slapd.sh`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping LDAP backend tests: ${reason}`);
}

const base: LdapBackendOptions = {
  ...openLdapMapping,
  url: LDAP_URL,
  bindDn: ADMIN_DN,
  bindPassword: ADMIN_PW,
  userTreeDn: 'ou=users,dc=nova,dc=test',
  groupTreeDn: 'ou=groups,dc=nova,dc=test',
};
/** The OpenLDAP mapping plus the test tree's AD-style enabled flag. */
const withEnabled: LdapBackendOptions = {
  ...base,
  userEnabledAttribute: 'userAccountControl',
  userEnabledMask: 2,
};

const open: LdapIdentityBackend[] = [];
function backend(over: Partial<LdapBackendOptions> = {}): LdapIdentityBackend {
  const b = new LdapIdentityBackend({ ...withEnabled, ...over });
  open.push(b);
  return b;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

/** A TCP proxy in front of slapd that the test can cut: counts and drops connections. */
class CuttableProxy {
  private server: Server | undefined;
  readonly sockets = new Set<Socket>();
  connections = 0;
  port = 0;
  constructor(private readonly blackhole = false) {}

  get url(): string {
    return `ldap://127.0.0.1:${this.port}`;
  }

  async listen(port = 0): Promise<this> {
    const target = new URL(LDAP_URL);
    this.server = createServer((client) => {
      this.connections++;
      this.sockets.add(client);
      client.on('close', () => {
        this.sockets.delete(client);
        this.server?.emit('drained-check');
      });
      client.on('error', () => undefined);
      if (this.blackhole) return;
      const upstream = netConnect(Number(target.port || 389), target.hostname);
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  /** Cuts every connection (as a server restart or an idle timeout would). */
  drop(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Resolves once no client connection is open. */
  async drained(): Promise<void> {
    while (this.sockets.size > 0) await once(this.server as Server, 'drained-check');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.drop();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function expectUnavailable(e: unknown, reason: string): LdapUnavailableError {
  expect(e).toBeInstanceOf(LdapUnavailableError);
  const err = e as LdapUnavailableError;
  expect(err.code).toBe(ErrorCode.Storage);
  expect(err.details.reason).toBe(reason);
  expect(toApiFault(err).status).toBe(503);
  return err;
}

/** Everything an error could leak through: message, details, cause, stack, JSON, inspect. */
function everythingIn(e: unknown): string {
  const err = e as Error & { details?: unknown };
  return [
    err.message,
    err.stack,
    JSON.stringify(err.details),
    inspect(err, { depth: 10 }),
    String(err.cause),
  ].join('\n');
}

describe('LdapIdentityBackend options', () => {
  const setting = (over: Record<string, unknown>): unknown => {
    try {
      new LdapIdentityBackend({ ...base, ...over } as LdapBackendOptions);
    } catch (e) {
      return isNovaError(e, ErrorCode.Configuration) ? (e.details as { setting: string }).setting : e;
    }
    return 'accepted';
  };

  it('names the field at fault', () => {
    expect(setting({ userTreeDn: undefined })).toBe('ldap.userTreeDn');
    expect(setting({ url: 'http://127.0.0.1:389' })).toBe('ldap.url');
    expect(setting({ url: 'ldap://127.0.0.1:389/dc=x?uid' })).toBe('ldap.url');
    expect(setting({ bindPassword: undefined })).toBe('ldap.bindPassword');
    expect(setting({ bindPassword: '' })).toBe('ldap.bindPassword'); // an unauthenticated bind
    expect(setting({ bindDn: undefined })).toBe('ldap.bindDn');
    expect(setting({ userIdAttribute: 'uid)(x=*' })).toBe('ldap.userIdAttribute');
    expect(setting({ userEnabledMask: -1 })).toBe('ldap.userEnabledMask');
    expect(setting({ userFilter: '(uid=*' })).toBe('ldap.userFilter');
    expect(setting({ pageSize: 1.5 })).toBe('ldap.pageSize');
    expect(setting({ queryScope: 'base' })).toBe('ldap.queryScope');
    expect(setting({ userTreeDn: 'not a dn' })).toBe('ldap.userTreeDn');
    expect(setting({ userTreDn: 'ou=users,dc=nova,dc=test' })).toBe('ldap.userTreDn'); // a typo
    expect(setting({})).toBe('accepted');
    expect(setting({ bindDn: undefined, bindPassword: undefined })).toBe('accepted'); // anonymous
  });

  it('never shows the bind password, in errors or in the backend object', () => {
    const secret = 'S3cr3t-pw-for-redaction';
    for (const over of [
      { url: `ldap://admin:${secret}@127.0.0.1:389` },
      { bindPassword: secret, userTreeDn: 42 },
      { bindPassword: secret.repeat(500) },
    ]) {
      let thrown: unknown;
      try {
        new LdapIdentityBackend({ ...base, ...over } as unknown as LdapBackendOptions);
      } catch (e) {
        thrown = e;
      }
      expect(isNovaError(thrown, ErrorCode.Configuration)).toBe(true);
      expect(everythingIn(thrown)).not.toContain(secret);
    }
    const b = backend({ bindPassword: secret });
    expect(inspect(b, { depth: 10, showHidden: true })).not.toContain(secret);
    expect(JSON.stringify(b)).not.toContain(secret);
  });

  it('is read-only and says so', () => {
    const b = backend();
    expect(b.kind).toBe('ldap');
    expect(b.writable).toBe(false);
    expect(b.domainId).toBe('default');
  });
});

describe.skipIf(!available)('LdapIdentityBackend against slapd (OpenLDAP mapping)', () => {
  const alice = {
    id: 'alice',
    name: 'alice',
    domainId: 'default',
    enabled: true,
    email: 'alice@nova.test',
    description: null,
    defaultProjectId: null,
  };

  it('authenticates alice by name and by id', async () => {
    const b = backend();
    expect(await b.authenticate({ name: 'alice', domainId: 'default' }, 'alice-secret')).toEqual(alice);
    expect(await b.authenticate({ id: 'alice' }, 'alice-secret')).toEqual(alice);
  });

  it('refuses a wrong password, an unknown user, another domain and a disabled user', async () => {
    const b = backend();
    expect(await b.authenticate({ name: 'alice', domainId: 'default' }, 'bob-secret')).toBeUndefined();
    expect(await b.authenticate({ name: 'alice', domainId: 'default' }, 'alice-secret ')).toBeUndefined();
    expect(await b.authenticate({ name: 'mallory', domainId: 'default' }, 'alice-secret')).toBeUndefined();
    expect(await b.authenticate({ name: 'alice', domainId: 'other' }, 'alice-secret')).toBeUndefined();
    // carol's password is right; userAccountControl 514 has ACCOUNTDISABLE (2) set
    expect(await b.authenticate({ name: 'carol', domainId: 'default' }, 'carol-secret')).toBeUndefined();
    expect((await b.getUser({ id: 'carol' }))?.enabled).toBe(false);
    // the control: without an enabled attribute configured, the same password does authenticate carol
    const noFlag = backend({ userEnabledAttribute: undefined, userEnabledMask: 0 });
    expect((await noFlag.authenticate({ name: 'carol', domainId: 'default' }, 'carol-secret'))?.enabled).toBe(
      true,
    );
  });

  it('refuses an empty password before any bind (no unauthenticated bind reaches the server)', async () => {
    const proxy = await new CuttableProxy().listen();
    try {
      const b = backend({ url: proxy.url });
      expect(await b.getUser({ id: 'alice' })).toBeDefined(); // the service connection
      const before = proxy.connections;
      expect(await b.authenticate({ name: 'alice', domainId: 'default' }, '')).toBeUndefined();
      expect(await b.authenticate({ id: 'alice' }, '')).toBeUndefined();
      expect(proxy.connections).toBe(before);
      expect(await b.authenticate({ id: 'alice' }, 'alice-secret')).toBeDefined();
      expect(proxy.connections).toBe(before + 1); // the user's bind has its own connection
    } finally {
      await proxy.stop();
    }
  });

  it('gets users by id and by name (names match case-insensitively, as uid does)', async () => {
    const b = backend();
    expect(await b.getUser({ id: 'alice' })).toEqual(alice);
    expect(await b.getUser({ name: 'alice', domainId: 'default' })).toEqual(alice);
    expect((await b.getUser({ name: 'ALICE', domainId: 'default' }))?.id).toBe('alice');
    expect(await b.getUser({ id: 'mallory' })).toBeUndefined();
    expect(await b.getUser({ name: 'alice', domainId: 'other' })).toBeUndefined();
    expect(await b.getUser({ id: '~not-an-issued-id' })).toBeUndefined();
  });

  it('lists users, with a name filter, paged', async () => {
    const b = backend();
    const all = await b.listUsers();
    expect(all.map((u) => u.id).sort()).toEqual(['alice', 'bob', 'carol']);
    expect(all.find((u) => u.id === 'carol')?.enabled).toBe(false);
    expect((await b.listUsers({ name: 'bob' })).map((u) => u.id)).toEqual(['bob']);
    expect(await b.listUsers({ name: 'nobody' })).toEqual([]);
    expect(await b.listUsers({ domainId: 'other' })).toEqual([]);
    expect((await b.listUsers({ domainId: 'default' })).length).toBe(3);
    // one entry per page: three pages, same answer
    expect((await backend({ pageSize: 1 }).listUsers()).map((u) => u.id).sort()).toEqual([
      'alice',
      'bob',
      'carol',
    ]);
    expect((await backend({ pageSize: 0 }).listUsers()).length).toBe(3);
    expect((await backend({ listLimit: 2 }).listUsers()).length).toBe(2);
    expect((await backend({ listLimit: 2, pageSize: 0 }).listUsers()).length).toBe(2);
  });

  it('a name that matches several entries is ambiguous: no user, no login', async () => {
    // every test user has objectClass inetOrgPerson: as a "name attribute" it matches all three
    const b = backend({ userNameAttribute: 'objectClass' });
    expect(await b.getUser({ name: 'inetOrgPerson', domainId: 'default' })).toBeUndefined();
    expect(
      await b.authenticate({ name: 'inetOrgPerson', domainId: 'default' }, 'alice-secret'),
    ).toBeUndefined();
    // two matches (under the size limit of 2, so no sizeLimitExceeded): still ambiguous
    const two = backend({ userNameAttribute: 'objectClass', userFilter: '(!(uid=carol))' });
    expect(await two.getUser({ name: 'inetOrgPerson', domainId: 'default' })).toBeUndefined();
  });

  it('an operator user filter narrows every user search', async () => {
    const b = backend({ userFilter: '(!(uid=carol))' });
    expect((await b.listUsers()).map((u) => u.id).sort()).toEqual(['alice', 'bob']);
    expect(await b.getUser({ id: 'carol' })).toBeUndefined();
  });

  it('gets and lists groups', async () => {
    const b = backend();
    expect(await b.getGroup('developers')).toEqual({
      id: 'developers',
      name: 'developers',
      domainId: 'default',
      description: 'People who write code',
    });
    expect(await b.getGroup('nobody')).toBeUndefined();
    expect((await b.listGroups()).map((g) => g.id).sort()).toEqual(['developers', 'operators']);
    expect((await b.listGroups({ name: 'operators' })).map((g) => g.id)).toEqual(['operators']);
    expect(await b.listGroups({ domainId: 'other' })).toEqual([]);
  });

  it('groupsOf by searching the groups member attribute', async () => {
    const b = backend();
    expect((await b.groupsOf('alice')).map((g) => g.id)).toEqual(['developers']);
    expect((await b.groupsOf('bob')).map((g) => g.id)).toEqual(['developers', 'operators']);
    expect(await b.groupsOf('carol')).toEqual([]);
    expect(await b.groupsOf('mallory')).toEqual([]);
    // the search really uses the configured member attribute
    expect(await backend({ groupMemberAttribute: 'uniqueMember' }).groupsOf('bob')).toEqual([]);
  });

  it('groupsOf through memberOf (the memberof overlay)', async () => {
    // a member attribute that matches nothing: only memberOf can find the groups
    const b = backend({ userMemberOfAttribute: 'memberOf', groupMemberAttribute: 'uniqueMember' });
    expect((await b.groupsOf('alice')).map((g) => g.id)).toEqual(['developers']);
    expect((await b.groupsOf('bob')).map((g) => g.id)).toEqual(['developers', 'operators']);
    expect(await b.groupsOf('carol')).toEqual([]);
    // memberOf DNs outside groupTreeDn are ignored
    expect(
      await backend({ userMemberOfAttribute: 'memberOf', groupTreeDn: 'ou=users,dc=nova,dc=test' }).groupsOf(
        'bob',
      ),
    ).toEqual([]);
  });

  it('membersOf a group', async () => {
    const b = backend();
    expect((await b.membersOf('developers')).map((u) => u.id)).toEqual(['alice', 'bob']);
    expect((await b.membersOf('operators')).map((u) => u.id)).toEqual(['bob']);
    expect(await b.membersOf('nobody')).toEqual([]);
    // members outside userTreeDn are not users of this backend
    expect(await backend({ userTreeDn: 'ou=groups,dc=nova,dc=test' }).membersOf('developers')).toEqual([]);
  });

  it('entryUUID as the id attribute: ids are the directory UUIDs', async () => {
    const b = backend({ userIdAttribute: 'entryUUID' });
    const a = await b.getUser({ name: 'alice', domainId: 'default' });
    expect(a?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect((await b.getUser({ id: a?.id as string }))?.name).toBe('alice');
    expect((await b.authenticate({ id: a?.id as string }, 'alice-secret'))?.name).toBe('alice');
    expect((await b.membersOf('operators')).map((u) => u.name)).toEqual(['bob']);
    expect((await b.groupsOf(a?.id as string)).map((g) => g.id)).toEqual(['developers']);
  });

  it('hostile names and ids neither match nor crash', async () => {
    const b = backend();
    const hostile = [
      '*',
      'a*',
      '*)(uid=*',
      ')(uid=*',
      'alice)(uid=*',
      'alice)(|(uid=*',
      '*)(|(objectClass=*',
      '\\',
      '\\2a',
      'alice\0',
      '\0',
      'alice\0)(uid=*',
      '(',
      ')',
      'a'.repeat(1000),
      'a'.repeat(100_000),
      '\u202e\ud83d\ude00',
    ];
    for (const name of hostile) {
      const ref = { name, domainId: 'default' };
      expect(await b.getUser(ref), name.slice(0, 40)).toBeUndefined();
      expect(await b.authenticate(ref, 'alice-secret'), name.slice(0, 40)).toBeUndefined();
      expect(await b.listUsers({ name }), name.slice(0, 40)).toEqual([]);
      expect(await b.listGroups({ name }), name.slice(0, 40)).toEqual([]);
      expect(await b.getUser({ id: name })).toBeUndefined();
      expect(await b.getGroup(name)).toBeUndefined();
      expect(await b.groupsOf(name)).toEqual([]);
      expect(await b.membersOf(name)).toEqual([]);
    }
    // a hostile *password* is just a wrong password
    for (const pw of ['*', ')(uid=*', '\0', 'alice-secret\0', 'x'.repeat(10_000)])
      expect(await b.authenticate({ id: 'alice' }, pw)).toBeUndefined();
    // and the backend still works afterwards
    expect((await b.getUser({ id: 'alice' }))?.name).toBe('alice');
  });
});

describe.skipIf(!available)('LdapIdentityBackend with the Active Directory mapping against slapd', () => {
  // The test tree has AD's user attributes (sAMAccountName, userAccountControl, memberOf) but no AD
  // schema for groups: only the group object class is replaced (group -> groupOfNames).
  const ad = (over: Partial<LdapBackendOptions> = {}) =>
    backend({ ...activeDirectoryMapping, groupObjectClass: 'groupOfNames', ...over });

  it('authenticates by sAMAccountName, refuses carol by userAccountControl mask 2', async () => {
    const b = ad();
    const alice = await b.authenticate({ name: 'alice', domainId: 'default' }, 'alice-secret');
    expect(alice).toMatchObject({ id: 'alice', name: 'alice', enabled: true, email: 'alice@nova.test' });
    expect(await b.authenticate({ name: 'alice', domainId: 'default' }, 'wrong')).toBeUndefined();
    expect(await b.authenticate({ name: 'carol', domainId: 'default' }, 'carol-secret')).toBeUndefined();
    expect(await b.authenticate({ name: 'carol', domainId: 'default' }, '')).toBeUndefined();
  });

  it('lists users of object class person with their enabled flags, and groups via memberOf', async () => {
    const b = ad();
    const users = await b.listUsers();
    expect(users.map((u) => [u.id, u.enabled]).sort()).toEqual([
      ['alice', true],
      ['bob', true],
      ['carol', false],
    ]);
    expect((await b.groupsOf('bob')).map((g) => g.name)).toEqual(['developers', 'operators']);
    expect((await b.membersOf('developers')).map((u) => u.id)).toEqual(['alice', 'bob']);
  });

  it('the unchanged AD group object class finds no groups in an OpenLDAP tree', async () => {
    const b = backend({ ...activeDirectoryMapping });
    expect(await b.listGroups()).toEqual([]);
    expect(await b.groupsOf('bob')).toEqual([]); // memberOf DNs are not of object class group
  });
});

describe.skipIf(!available)('LdapIdentityBackend connections', () => {
  let proxy: CuttableProxy;
  afterEach(async () => {
    await proxy?.stop();
  });

  it('reuses one bound service connection', async () => {
    proxy = await new CuttableProxy().listen();
    const b = backend({ url: proxy.url });
    await Promise.all([
      b.getUser({ id: 'alice' }),
      b.listUsers(),
      b.groupsOf('bob'),
      b.membersOf('developers'),
    ]);
    await b.getUser({ id: 'bob' });
    expect(proxy.connections).toBe(1);
  });

  it('reconnects and binds again after the server drops the connection', async () => {
    proxy = await new CuttableProxy().listen();
    const b = backend({ url: proxy.url });
    expect((await b.getUser({ id: 'alice' }))?.name).toBe('alice');
    proxy.drop();
    await proxy.drained();
    // bound again (as the service account): memberOf and the user entries are readable
    expect((await b.groupsOf('bob')).length).toBe(2);
    expect(proxy.connections).toBe(2);
  });

  it('a connection cut while a search is in flight is retried once on a new connection', async () => {
    proxy = await new CuttableProxy().listen();
    const b = backend({ url: proxy.url });
    await b.getUser({ id: 'alice' });
    const pending = b.listUsers();
    proxy.drop();
    expect((await pending).length).toBe(3);
  });

  it('directory down: a typed 503 without the password; recovers when it is back', async () => {
    proxy = await new CuttableProxy().listen();
    const port = proxy.port;
    const b = backend({ url: proxy.url });
    await b.getUser({ id: 'alice' });
    await proxy.stop();
    const err = await b.getUser({ id: 'alice' }).catch((e: unknown) => e);
    expectUnavailable(err, 'refused');
    expect(everythingIn(err)).not.toContain(ADMIN_PW);
    await expect(b.authenticate({ id: 'alice' }, 'alice-secret')).rejects.toBeInstanceOf(
      LdapUnavailableError,
    );
    proxy = await new CuttableProxy().listen(port);
    expect((await b.getUser({ id: 'alice' }))?.name).toBe('alice');
  });

  it('nothing listening: refused', async () => {
    proxy = await new CuttableProxy().listen();
    const url = proxy.url;
    await proxy.stop();
    const b = backend({ url });
    const err = await b.listGroups().catch((e: unknown) => e);
    expectUnavailable(err, 'refused');
    expect(everythingIn(err)).not.toContain(ADMIN_PW);
  });

  it('a server that never answers: timeout', async () => {
    proxy = await new CuttableProxy(true).listen();
    const b = backend({ url: proxy.url, timeoutMs: 300 });
    expectUnavailable(await b.getUser({ id: 'alice' }).catch((e: unknown) => e), 'timeout');
  });

  it('a wrong service password: service_bind_rejected, without either password', async () => {
    const wrong = 'not-the-admin-password';
    const b = backend({ bindPassword: wrong });
    const err = await b.getUser({ id: 'alice' }).catch((e: unknown) => e);
    expect(expectUnavailable(err, 'service_bind_rejected').details.resultCode).toBe(49);
    expect(everythingIn(err)).not.toContain(wrong);
  });

  it('close() unbinds the service connection; later calls are refused', async () => {
    proxy = await new CuttableProxy().listen();
    const b = backend({ url: proxy.url });
    await b.getUser({ id: 'alice' });
    expect(proxy.sockets.size).toBe(1);
    await b.close();
    await proxy.drained();
    expect(proxy.sockets.size).toBe(0);
    expectUnavailable(await b.getUser({ id: 'alice' }).catch((e: unknown) => e), 'closed');
    await b.close(); // idempotent
  });
});
