import type { ComputeEngine } from '@nova-lfs/core';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { computeResourceRoutes } from '../compute/resources/index.js';
import { computeServerRoutes } from '../compute/servers/index.js';
import { buildApiApp } from '../http/api-app.js';
import type { ApiServices, NetworkCatalog, PublicUrls } from '../http/api-services.js';
import { servicePaths } from '../http/api-services.js';
import type { RateLimitOptions } from '../http/rate-limiter.js';
import { route } from '../http/route.js';
import type { DirectoryDomain } from '../identity/domain-routed-backend.js';
import { identityRoutes } from '../identity/identity-routes.js';
import { createIdentityService, type IdentityService } from '../identity/identity-service.js';
import { imageRoutes, registerImageRecord } from '../image/index.js';
import { PolicyEngine } from '../policy/policy-engine.js';
import { ApiMetrics } from './api-metrics.js';

/** Options of {@link createApiServer}. */
export interface ApiServerOptions {
  /** The engine the API serves (its hosts added, opened). */
  readonly engine: ComputeEngine;
  /** The API's own database (identity, flavor attributes, key pairs, image records ...). */
  readonly db: Kysely<object>;
  /** Where clients reach the listener, e.g. `http://127.0.0.1:8774` (links and the catalog use it). */
  readonly publicUrl: string;
  /** The bootstrap administrator's password (`admin` in project `admin`, domain `Default`). */
  readonly adminPassword: string;
  /**
   * Domains whose users and groups come from a directory (LDAP, Active Directory), read-only;
   * every other domain, Default with the administrator included, stays in SQL. Each domain is
   * created when missing; a directory user's id is `<domainId>~<directory id>`. Role assignments
   * stay in SQL. See `DomainRoutedBackend`.
   */
  readonly identityDirectories?: readonly DirectoryDomain[];
  /** An operator's YAML policy file overriding the default rules. */
  readonly policyFile?: string;
  /** A pino logger; requests are logged with their request ids. */
  readonly logger?: FastifyBaseLogger;
  /** Directory for image uploads in progress. */
  readonly uploadDir?: string;
  /** Largest image upload in bytes (default 10 GiB). */
  readonly maxImageBytes?: number;
  /** Per-caller request rate limit (default none). */
  readonly rateLimit?: RateLimitOptions;
  /** Largest JSON body in bytes (default 1 MiB). */
  readonly bodyLimit?: number;
  /** Token lifetime in seconds (default 3600). */
  readonly tokenTtlSeconds?: number;
  /** Serve `/metrics` without a token (for a Prometheus on loopback); default: admins only. */
  readonly publicMetrics?: boolean;
  /**
   * The networks of the engine's NetworkAdapter (the same `LocalNetworkAdapter`): `POST /servers`
   * checks `networks` against it, `os-networks` lists it. Default: no network service.
   */
  readonly network?: NetworkCatalog;
}

/** A ready API server: the Fastify app (not yet listening), its identity service and metrics. */
export interface ApiServer {
  readonly app: FastifyInstance;
  readonly identity: IdentityService;
  readonly services: ApiServices;
  readonly urls: PublicUrls;
  readonly metrics: ApiMetrics;
  /** Starts listening. */
  listen(host: string, port: number): Promise<void>;
  /** Stops listening and releases the API's resources (not the engine nor the database). */
  close(): Promise<void>;
}

/** The public URLs of the three services on one listener. */
export function publicUrlsOf(publicUrl: string): PublicUrls {
  const base = publicUrl.replace(/\/+$/, '');
  return {
    compute: `${base}${servicePaths.compute}`,
    image: `${base}${servicePaths.image}`,
    identity: `${base}${servicePaths.identity}`,
  };
}

/**
 * Builds the OpenStack-compatible API over an engine: Identity v3 (`/v3`), Compute v2.1
 * (`/v2.1`, version documents at `/`) and Image v2 (`/image`) on one listener, role-based access
 * from Nova's, Keystone's and Glance's default policies (overridable by a YAML file),
 * `/openapi.json` and Prometheus metrics at `/metrics`. Migrates the API's tables in `db` and
 * bootstraps the administrator, so a restart over the same database keeps everything.
 */
export async function createApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const urls = publicUrlsOf(options.publicUrl);
  const policy = options.policyFile ? PolicyEngine.fromFile(options.policyFile) : new PolicyEngine();
  const services: ApiServices = {
    engine: options.engine,
    policy,
    urls,
    db: options.db,
    ...(options.network ? { network: options.network } : {}),
  };
  const identity = await createIdentityService({
    db: options.db,
    adminPassword: options.adminPassword,
    urls,
    ...(options.identityDirectories ? { directories: options.identityDirectories } : {}),
    ...(options.tokenTtlSeconds ? { tokenTtlSeconds: options.tokenTtlSeconds } : {}),
  });
  const metrics = new ApiMetrics(options.engine);
  policy.register({
    'nova_lfs:metrics': {
      check: options.publicMetrics ? '@' : 'rule:context_is_admin',
      description: 'Read the Prometheus metrics.',
    },
  });
  const routes = [
    ...(await computeResourceRoutes(services)),
    ...(await computeServerRoutes(services, {
      recordSnapshot: (s) =>
        registerImageRecord(services, { imageId: s.imageId, ownerProjectId: s.ownerProjectId, name: s.name }),
    })),
    ...(await imageRoutes(services, {
      ...(options.uploadDir ? { uploadDir: options.uploadDir } : {}),
      ...(options.maxImageBytes ? { maxImageBytes: options.maxImageBytes } : {}),
    })),
    ...identityRoutes(services, identity),
    route({
      method: 'GET',
      url: '/metrics',
      service: 'compute',
      summary: 'Prometheus metrics',
      auth: options.publicMetrics ? 'none' : 'token',
      rules: ['nova_lfs:metrics'],
      handler: async ({ auth }) => {
        if (!options.publicMetrics && auth) policy.authorize('nova_lfs:metrics', auth);
        const { contentType, body } = await metrics.render();
        return { status: 200, headers: { 'content-type': contentType }, body };
      },
    }),
  ];
  const app = buildApiApp({
    tokens: identity,
    routes,
    identityUrl: urls.identity,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
    ...(options.bodyLimit ? { bodyLimit: options.bodyLimit } : {}),
  });
  metrics.attach(app);
  return {
    app,
    identity,
    services,
    urls,
    metrics,
    listen: async (host, port) => {
      await app.listen({ host, port });
    },
    close: async () => {
      metrics.close();
      await app.close();
      await identity.close?.();
    },
  };
}
