import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { ApiFault, type ServiceKind, toApiFault } from './api-fault.js';
import { type AuthContext, isAdmin, type TokenValidator } from './auth-context.js';
import { faultBody } from './fault-body.js';
import { RateLimiter, type RateLimitOptions } from './rate-limiter.js';
import { openApiOperation, openApiPath, type RouteSpec, validatePart } from './route.js';

/** Options of {@link buildApiApp}. */
export interface ApiAppOptions {
  /** Validates `X-Auth-Token`. */
  readonly tokens: TokenValidator;
  /** Routes of every service module. */
  readonly routes: readonly RouteSpec[];
  /** A pino logger (Fastify's `loggerInstance`). Default: none. */
  readonly logger?: FastifyBaseLogger;
  /** Largest JSON body in bytes (default 1 MiB); larger ones get 413. */
  readonly bodyLimit?: number;
  /** The public URL of the identity endpoint, for `WWW-Authenticate` (e.g. `http://127.0.0.1:5000/v3`). */
  readonly identityUrl?: string;
  /**
   * Requests per caller (the user, or the client address before authentication); beyond it a
   * 429 `overLimit` with `Retry-After`. Default: no limit.
   */
  readonly rateLimit?: RateLimitOptions;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The service the matched route belongs to (error formatting). */
    novaService?: ServiceKind;
    /** The authenticated caller, once validated. */
    novaAuth?: AuthContext | null;
  }
}

/**
 * Builds the HTTP application: request ids on every answer (`x-openstack-request-id` and
 * `x-compute-request-id`, as Nova sends both), JSON bodies that may be empty, token validation,
 * input validation from the routes' zod schemas, errors in each service's format without
 * internals, and `/openapi.json` generated from the same schemas.
 */
export function buildApiApp(options: ApiAppOptions): FastifyInstance {
  const app: FastifyInstance = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    genReqId: () => `req-${randomUUID()}`,
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
  }) as unknown as FastifyInstance;

  // JSON that may be empty (GET and action POSTs from the SDK send none or `Accept: ""`)
  app.removeContentTypeParser(['application/json']);
  app.addContentTypeParser(
    ['application/json', 'application/openstack-images-v2.1-json-patch'],
    { parseAs: 'string' },
    (_req, text, done) => {
      const body = text as string;
      if (body.trim() === '') return done(null, undefined);
      try {
        done(null, JSON.parse(body));
      } catch {
        done(new ApiFault(400, 'Malformed request body: not valid JSON', { field: 'body' }), undefined);
      }
    },
  );
  // image uploads stream through
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-openstack-request-id', request.id);
    reply.header('x-compute-request-id', request.id);
  });
  app.setErrorHandler(async (error, request, reply) => {
    const fault = toApiFault(error);
    // a deliberate answer (501 not implemented, 503 unavailable) is not a failure of the service
    if (fault.status >= 500 && !(error instanceof ApiFault))
      request.log.error({ err: error }, 'request failed');
    else request.log.info({ status: fault.status, message: fault.message }, 'request refused');
    // a refusal before the handler ran (body too large, malformed JSON, unsupported media type)
    // still answers in the format of the service the path belongs to
    await sendFault(
      reply,
      request.novaService ?? serviceOfUrl(request.url),
      fault,
      isAdmin(request.novaAuth ?? null),
      options,
    );
  });
  app.setNotFoundHandler(async (request, reply) => {
    await sendFault(
      reply,
      serviceOfUrl(request.url),
      new ApiFault(404, 'The resource could not be found.'),
      false,
      options,
    );
  });

  const limiter = options.rateLimit ? new RateLimiter(options.rateLimit) : undefined;
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of options.routes) {
    register(app, spec, options, limiter);
    const path = openApiPath(spec.url);
    paths[path] ??= {};
    paths[path][spec.method.toLowerCase()] = openApiOperation(spec);
  }
  app.get('/openapi.json', async () => ({
    openapi: '3.1.0',
    info: {
      title: 'Nova LFS API',
      version: '2.1',
      description: 'OpenStack Compute v2.1, Identity v3 and Image v2.',
    },
    components: { securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' } } },
    paths,
  }));
  return app;
}

function register(
  app: FastifyInstance,
  spec: RouteSpec,
  options: ApiAppOptions,
  limiter: RateLimiter | undefined,
): void {
  app.route({
    method: spec.method,
    url: spec.url,
    ...(spec.bodyLimit ? { bodyLimit: spec.bodyLimit } : {}),
    handler: async (request, reply) => {
      request.novaService = spec.service;
      const auth =
        spec.auth === 'none' ? await optionalAuth(request, options) : await requireAuth(request, options);
      request.novaAuth = auth;
      if (limiter) {
        const wait = limiter.take(auth ? `user:${auth.userId}` : `ip:${request.ip}`);
        if (wait > 0)
          throw new ApiFault(429, 'Rate limit exceeded: too many requests; retry later.', {
            faultName: 'overLimit',
            headers: { 'Retry-After': String(wait) },
          });
      }
      const params = validatePart(spec.params, request.params, 'path');
      const query = validatePart(spec.query, request.query, 'query');
      const body = validatePart(spec.body, request.body, 'body');
      const answer = await spec.handler({ params, query, body, auth, requestId: request.id, request, reply });
      if (reply.sent) return reply;
      if (answer.headers) reply.headers(answer.headers);
      reply.code(answer.status);
      if (answer.body === undefined) return reply.send();
      return reply.send(answer.body);
    },
  });
}

async function requireAuth(request: FastifyRequest, options: ApiAppOptions): Promise<AuthContext> {
  const token = tokenOf(request);
  if (token === undefined) throw unauthorized(options);
  try {
    return await options.tokens.validate(token);
  } catch (e) {
    if (e instanceof ApiFault && e.status === 401) throw unauthorized(options, e.message);
    throw e;
  }
}

async function optionalAuth(request: FastifyRequest, options: ApiAppOptions): Promise<AuthContext | null> {
  const token = tokenOf(request);
  if (token === undefined) return null;
  try {
    return await options.tokens.validate(token);
  } catch {
    return null;
  }
}

function tokenOf(request: FastifyRequest): string | undefined {
  const header = request.headers['x-auth-token'];
  const token = Array.isArray(header) ? header[0] : header;
  return token === undefined || token === '' ? undefined : token;
}

function unauthorized(options: ApiAppOptions, message?: string): ApiFault {
  return new ApiFault(401, message ?? 'The request you have made requires authentication.', {
    headers: options.identityUrl ? { 'WWW-Authenticate': `Keystone uri="${options.identityUrl}"` } : {},
  });
}

async function sendFault(
  reply: FastifyReply,
  service: ServiceKind,
  fault: ApiFault,
  admin: boolean,
  options: ApiAppOptions,
): Promise<void> {
  const headers = { ...fault.extra.headers };
  if (fault.status === 401 && options.identityUrl && !headers['WWW-Authenticate'])
    headers['WWW-Authenticate'] = `Keystone uri="${options.identityUrl}"`;
  reply.headers(headers);
  reply
    .code(fault.status)
    .type('application/json; charset=UTF-8')
    .send(faultBody(service, fault, admin));
}

function serviceOfUrl(url: string): ServiceKind {
  if (url.startsWith('/v3') || url.startsWith('/identity')) return 'identity';
  if (url.startsWith('/image')) return 'image';
  return 'compute';
}
