import { createFakeCloud, type FakeCloud, type FakeCloudOptions } from '@nova-lfs/core/testing';
import BetterSqlite3 from 'better-sqlite3';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { Kysely, SqliteDialect } from 'kysely';
import { type ApiServer, type ApiServerOptions, createApiServer } from './api-server.js';

/** The bootstrap administrator's password of {@link apiServerHarness}. */
export const harnessAdminPassword = 'Owasp-Adm1n-Pw';

/** One request and its answer, as {@link ApiServerHarness.call} recorded it. */
export interface RecordedExchange {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly headers: LightMyRequestResponse['headers'];
  readonly body: string;
}

/** The whole API (`createApiServer`) over FAKE hosts and an in-memory SQLite database. */
export interface ApiServerHarness {
  readonly server: ApiServer;
  readonly cloud: FakeCloud;
  readonly db: Kysely<object>;
  /** Every exchange made through {@link call}, in order. */
  readonly exchanges: RecordedExchange[];
  /** A request with `token` as X-Auth-Token (`null`: none); recorded in {@link exchanges}. */
  call(token: string | null, options: InjectOptions): Promise<LightMyRequestResponse>;
  /** A project-scoped token for a Default-domain user (password method). @throws unless 201 */
  login(user: string, password: string, projectId: string): Promise<string>;
  /** The bootstrap administrator's token on project `admin`. */
  adminToken(): Promise<string>;
  close(): Promise<void>;
}

/** Options of {@link apiServerHarness}. */
export interface ApiServerHarnessOptions {
  readonly cloud?: FakeCloudOptions;
  /** Where clients reach it (default `http://127.0.0.1:8774`); a test that listens names its port. */
  readonly publicUrl?: string;
  readonly server?: Partial<Omit<ApiServerOptions, 'engine' | 'db' | 'publicUrl' | 'adminPassword'>>;
}

/** Keystone's password authentication body for a Default-domain user, optionally project-scoped. */
export function passwordAuthBody(user: string, password: string, projectId?: string): unknown {
  return {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: user, domain: { id: 'default' }, password } },
      },
      ...(projectId === undefined ? {} : { scope: { project: { id: projectId } } }),
    },
  };
}

/** Builds the API server as `nova-lfs serve` does, minus the listener. */
export async function apiServerHarness(options: ApiServerHarnessOptions = {}): Promise<ApiServerHarness> {
  const cloud = await createFakeCloud(options.cloud);
  const db = new Kysely<object>({ dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }) });
  const server = await createApiServer({
    engine: cloud.compute,
    db,
    publicUrl: options.publicUrl ?? 'http://127.0.0.1:8774',
    adminPassword: harnessAdminPassword,
    ...options.server,
  });
  await server.app.ready();
  const exchanges: RecordedExchange[] = [];
  const call = async (token: string | null, o: InjectOptions): Promise<LightMyRequestResponse> => {
    const r = await server.app.inject({
      ...o,
      headers: { ...(token === null ? {} : { 'x-auth-token': token }), ...o.headers },
    });
    exchanges.push({
      method: o.method ?? 'GET',
      url: String(o.url),
      status: r.statusCode,
      headers: r.headers,
      body: r.body,
    });
    return r;
  };
  const login = async (user: string, password: string, projectId: string): Promise<string> => {
    const r = await call(null, {
      method: 'POST',
      url: '/v3/auth/tokens?nocatalog',
      payload: passwordAuthBody(user, password, projectId) as Record<string, unknown>,
    });
    if (r.statusCode !== 201) throw new Error(`login ${user}: ${r.statusCode} ${r.body}`);
    return r.headers['x-subject-token'] as string;
  };
  let adminProjectId: string | undefined;
  return {
    server,
    cloud,
    db,
    exchanges,
    call,
    login,
    adminToken: async () => {
      if (!adminProjectId)
        adminProjectId = (await server.identity.projects.get({ name: 'admin', domainId: 'default' }))?.id;
      if (!adminProjectId) throw new Error('no admin project');
      return login('admin', harnessAdminPassword, adminProjectId);
    },
    close: async () => {
      await server.close();
      await cloud.compute.close();
      await db.destroy();
    },
  };
}

/** A project with its member and reader, as {@link seedTenants} made them. */
export interface Tenant {
  readonly projectId: string;
  readonly memberId: string;
  readonly member: string;
}

/** Two projects, a member in each, a reader in A, all with real tokens. */
export interface Tenants {
  readonly admin: string;
  readonly a: Tenant & { readonly readerId: string; readonly reader: string };
  readonly b: Tenant;
  readonly roleIds: Readonly<Record<'admin' | 'member' | 'reader', string>>;
}

/**
 * Creates, through the Identity API as the administrator, projects `owasp-a` and `owasp-b`,
 * users `alice` (member of A), `bob` (member of B) and `rita` (reader of A), and logs them in.
 */
export async function seedTenants(h: ApiServerHarness): Promise<Tenants> {
  const admin = await h.adminToken();
  type Answer = { project: { id: string }; user: { id: string }; roles: { id: string; name: string }[] };
  const ok = async (o: InjectOptions, status: number): Promise<Answer> => {
    const r = await h.call(admin, o);
    if (r.statusCode !== status) throw new Error(`${o.method} ${o.url}: ${r.statusCode} ${r.body}`);
    return (r.body ? r.json() : {}) as Answer;
  };
  const project = async (name: string) =>
    (
      await ok(
        { method: 'POST', url: '/v3/projects', payload: { project: { name, domain_id: 'default' } } },
        201,
      )
    ).project.id as string;
  const roles = (await ok({ method: 'GET', url: '/v3/roles' }, 200)).roles;
  const roleId = (name: string) => {
    const r = roles.find((x) => x.name === name);
    if (!r) throw new Error(`no role ${name}`);
    return r.id;
  };
  const roleIds = { admin: roleId('admin'), member: roleId('member'), reader: roleId('reader') };
  const user = async (name: string, projectId: string, role: keyof typeof roleIds) => {
    const password = `${name}-Pw-0wasp`;
    const id = (
      await ok(
        {
          method: 'POST',
          url: '/v3/users',
          payload: { user: { name, password, domain_id: 'default', default_project_id: projectId } },
        },
        201,
      )
    ).user.id;
    await ok({ method: 'PUT', url: `/v3/projects/${projectId}/users/${id}/roles/${roleIds[role]}` }, 204);
    return { id, token: await h.login(name, password, projectId) };
  };
  const pa = await project('owasp-a');
  const pb = await project('owasp-b');
  const [alice, bob, rita] = await Promise.all([
    user('alice', pa, 'member'),
    user('bob', pb, 'member'),
    user('rita', pa, 'reader'),
  ]);
  return {
    admin,
    a: { projectId: pa, memberId: alice.id, member: alice.token, readerId: rita.id, reader: rita.token },
    b: { projectId: pb, memberId: bob.id, member: bob.token },
    roleIds,
  };
}

/** Microversion headers (both spellings, as the clients send). */
export const computeVersion = (v: string): Record<string, string> => ({
  'openstack-api-version': `compute ${v}`,
  'x-openstack-nova-api-version': v,
});

/**
 * Waits until the server shows `status` to the administrator, woken by the engine's events for it
 * (no sleeping); fails after 10 s.
 */
export async function waitForServerStatus(
  h: ApiServerHarness,
  admin: string,
  id: string,
  status: string,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const next = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        sub.unsubscribe();
        resolve();
      }, 2_000);
      const sub = h.cloud.compute.watch(id).subscribe({
        next: () => {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve();
        },
        complete: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
    const r = await h.call(admin, { method: 'GET', url: `/v2.1/servers/${id}` });
    if (r.statusCode === 200 && r.json().server.status === status) return r.json().server;
    if (Date.now() > deadline) throw new Error(`server ${id} did not reach ${status}: ${r.body}`);
    await next;
  }
}
