import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFakeCloud, type FakeCloud } from '@nova-lfs/core/testing';
import BetterSqlite3 from 'better-sqlite3';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type InjectOptions,
  type LightMyRequestResponse,
} from 'fastify';
import { Kysely, SqliteDialect } from 'kysely';
import { buildApiApp } from '../http/api-app.js';
import type { ApiServices, PublicUrls } from '../http/api-services.js';
import { PolicyEngine } from '../policy/policy-engine.js';
import { identityRoutes } from './identity-routes.js';
import {
  createIdentityService,
  type IdentityService,
  type IdentityServiceOptions,
} from './identity-service.js';
import { PasswordHasher } from './password-hasher.js';

/** The administrator's password in tests. */
export const adminPassword = 'Adm1n-Secret-Pw';

/** Public URLs of the test services. */
export const testUrls: PublicUrls = {
  compute: 'http://127.0.0.1:8774/v2.1',
  image: 'http://127.0.0.1:8774/image',
  identity: 'http://127.0.0.1:8774/v3',
};

/** scrypt at a low cost, so tests that hash many passwords stay fast (the format is the same). */
export function cheapHasher(): PasswordHasher {
  return new PasswordHasher({ cost: { N: 1024, r: 8, p: 1 } });
}

/** A clock tests move by hand. */
export interface TestClock {
  now: number;
  readonly fn: () => number;
  advance(ms: number): void;
}

/** A clock starting now (rounded to a second), moving only when told. */
export function testClock(start = Math.floor(Date.now() / 1000) * 1000): TestClock {
  const clock: TestClock = {
    now: start,
    fn: () => clock.now,
    advance: (ms: number) => {
      clock.now += ms;
    },
  };
  return clock;
}

/** A fresh in-memory SQLite database. */
export function memoryDb(): Kysely<object> {
  return new Kysely<object>({ dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }) });
}

/** A SQLite database in a file (`path` a fresh temporary one by default). */
export function fileDb(path = join(mkdtempSync(join(tmpdir(), 'nlfs-identity-')), 'identity.sqlite')): {
  db: Kysely<object>;
  path: string;
} {
  return {
    db: new Kysely<object>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path) }) }),
    path,
  };
}

/** Opens the identity service over `db` with the test administrator and a cheap hasher. */
export function openIdentity(
  db: Kysely<object>,
  options: Partial<IdentityServiceOptions> = {},
): Promise<IdentityService> {
  return createIdentityService({ db, adminPassword, urls: testUrls, hasher: cheapHasher(), ...options });
}

/** Keystone's password token request body. */
export function passwordAuth(
  user: string,
  password: string,
  scope?: unknown,
  domain: Record<string, string> = { name: 'Default' },
): { auth: Record<string, unknown> } {
  return {
    auth: {
      identity: { methods: ['password'], password: { user: { name: user, domain, password } } },
      ...(scope === undefined ? {} : { scope }),
    },
  };
}

/** A project scope by name in the Default domain. */
export const projectScope = (name: string) => ({ project: { name, domain: { name: 'Default' } } });

/**
 * A real pino logger (the one Fastify makes, with its request serializers) at level trace that
 * keeps every line it writes.
 */
export function recordingLogger(): { logger: FastifyBaseLogger; lines: string[] } {
  const lines: string[] = [];
  const maker = Fastify({
    logger: { level: 'trace', stream: { write: (line: string) => lines.push(line) } },
  });
  return { logger: maker.log, lines };
}

/** An app serving the identity routes over a real identity service (and a FAKE-host engine). */
export interface IdentityHarness {
  readonly app: FastifyInstance;
  readonly identity: IdentityService;
  readonly services: ApiServices;
  readonly clock: TestClock;
  readonly logLines: string[];
  /** A request with `token` as X-Auth-Token (`null`: none). */
  call(token: string | null, options: InjectOptions): Promise<LightMyRequestResponse>;
  /** A token for the user (password method, Default domain) scoped as asked. */
  login(user: string, password: string, scope?: unknown): Promise<string>;
  /** The administrator's project-scoped token. */
  adminToken(): Promise<string>;
  close(): Promise<void>;
}

/** Builds the identity app on an in-memory database. */
export async function identityHarness(
  options: Partial<IdentityServiceOptions> & { readonly policy?: Record<string, string> } = {},
): Promise<IdentityHarness> {
  const { policy, ...serviceOptions } = options;
  const cloud: FakeCloud = await createFakeCloud();
  const db = serviceOptions.db ?? memoryDb();
  const clock = testClock();
  const identity = await openIdentity(db, { clock: clock.fn, ...serviceOptions });
  const services: ApiServices = {
    engine: cloud.compute,
    policy: new PolicyEngine(policy),
    urls: testUrls,
    db,
  };
  const { logger, lines } = recordingLogger();
  const app = buildApiApp({
    tokens: identity,
    routes: identityRoutes(services, identity),
    identityUrl: testUrls.identity,
    logger,
  });
  await app.ready();
  const call = (token: string | null, o: InjectOptions) =>
    app.inject({ ...o, headers: { ...(token === null ? {} : { 'x-auth-token': token }), ...o.headers } });
  const login = async (user: string, password: string, scope?: unknown) => {
    const r = await call(null, {
      method: 'POST',
      url: '/v3/auth/tokens',
      payload: passwordAuth(user, password, scope),
    });
    if (r.statusCode !== 201) throw new Error(`login ${user}: ${r.statusCode} ${r.body}`);
    return r.headers['x-subject-token'] as string;
  };
  return {
    app,
    identity,
    services,
    clock,
    logLines: lines,
    call,
    login,
    adminToken: () => login('admin', adminPassword, projectScope('admin')),
    close: async () => {
      await app.close();
      await identity.close();
      await cloud.compute.close();
      await db.destroy();
    },
  };
}

/** Creates (as the administrator) a project, a user and a role for the user on the project. */
export async function seedMember(
  h: IdentityHarness,
  admin: string,
  user: string,
  password: string,
  project: string,
  role = 'member',
): Promise<{ userId: string; projectId: string; roleId: string }> {
  const found = (
    await h.call(admin, { method: 'GET', url: `/v3/projects?name=${encodeURIComponent(project)}` })
  ).json().projects[0];
  const p =
    found ??
    (
      await h.call(admin, { method: 'POST', url: '/v3/projects', payload: { project: { name: project } } })
    ).json().project;
  const created = await h.call(admin, {
    method: 'POST',
    url: '/v3/users',
    payload: { user: { name: user, password } },
  });
  if (created.statusCode !== 201)
    throw new Error(`create user ${user}: ${created.statusCode} ${created.body}`);
  const u = created.json().user;
  const r = (await h.call(admin, { method: 'GET', url: `/v3/roles?name=${role}` })).json().roles[0];
  const put = await h.call(admin, { method: 'PUT', url: `/v3/projects/${p.id}/users/${u.id}/roles/${r.id}` });
  if (put.statusCode !== 204) throw new Error(`grant ${role}: ${put.statusCode} ${put.body}`);
  return { userId: u.id, projectId: p.id, roleId: r.id };
}
