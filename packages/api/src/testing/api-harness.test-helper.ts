import type { FakeCloud, FakeCloudOptions } from '@nova-lfs/core/testing';
import { createFakeCloud } from '@nova-lfs/core/testing';
import BetterSqlite3 from 'better-sqlite3';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { Kysely, SqliteDialect } from 'kysely';
import { type ApiAppOptions, buildApiApp } from '../http/api-app.js';
import type { ApiServices, NetworkCatalog } from '../http/api-services.js';
import type { RouteSpec } from '../http/route.js';
import { PolicyEngine } from '../policy/policy-engine.js';
import { StaticTokenValidator, standardCallers } from './static-tokens.js';

/** An app over a FAKE-host engine with the standard callers (tokens `admin`, `alice`, `rita`, `bob`). */
export interface ApiHarness {
  readonly app: FastifyInstance;
  readonly cloud: FakeCloud;
  readonly services: ApiServices;
  /** A request as the caller whose token is `token` (`null`: no token). */
  call(token: string | null, options: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** Options of {@link apiHarness}. */
export interface ApiHarnessOptions {
  readonly cloud?: FakeCloudOptions;
  readonly policy?: Record<string, string>;
  /** The network catalog the API checks create requests against (usually the cloud's adapter). */
  readonly network?: NetworkCatalog;
  /** Extra app options (rate limit, body limit). */
  readonly app?: Partial<Pick<ApiAppOptions, 'rateLimit' | 'bodyLimit'>>;
}

/** Builds the routes the module under test serves and an app around them. */
export async function apiHarness(
  routes: (services: ApiServices) => readonly RouteSpec[],
  options: ApiHarnessOptions = {},
): Promise<ApiHarness> {
  const cloud = await createFakeCloud(options.cloud);
  const db = new Kysely<object>({ dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }) });
  const base = 'http://127.0.0.1:8774';
  const services: ApiServices = {
    engine: cloud.compute,
    policy: new PolicyEngine(options.policy),
    urls: { compute: `${base}/v2.1`, image: `${base}/image`, identity: `${base}/v3` },
    db,
    ...(options.network ? { network: options.network } : {}),
  };
  const app = buildApiApp({
    tokens: new StaticTokenValidator(standardCallers()),
    routes: routes(services),
    identityUrl: services.urls.identity,
    ...options.app,
  });
  await app.ready();
  return {
    app,
    cloud,
    services,
    call: (token, o) =>
      app.inject({ ...o, headers: { ...(token === null ? {} : { 'x-auth-token': token }), ...o.headers } }),
    close: async () => {
      await app.close();
      await cloud.compute.close();
      await db.destroy();
    },
  };
}
