import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiFault, type ServiceKind } from './api-fault.js';
import type { AuthContext } from './auth-context.js';

/** HTTP methods routes use. */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a handler answers: a status, a JSON body (or a Buffer / stream), extra headers. */
export interface RouteAnswer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** What a handler gets: validated input, the caller and the raw request. */
export interface RouteContext<P, Q, B> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  /** The validated caller; `null` only on routes with `auth: 'none'`. */
  readonly auth: AuthContext | null;
  /** `req-<uuid>`, also in the response's request-id headers and every log line. */
  readonly requestId: string;
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
}

/**
 * One API operation: where it is, which service's conventions it follows, who may call it (the
 * caller must be authenticated unless `auth` is `'none'`; fine-grained policy checks happen in
 * the handler, which knows the target) and its input schemas. The schemas validate the request
 * (a failure is a 400 naming the field) and document it in `/openapi.json`.
 */
export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  readonly method: HttpMethod;
  /** Fastify path, e.g. `/v2.1/servers/:serverId`. */
  readonly url: string;
  readonly service: ServiceKind;
  /** One line for the OpenAPI document. */
  readonly summary: string;
  /** `'token'` (default): a valid `X-Auth-Token` is required. */
  readonly auth?: 'token' | 'none';
  /** Policy rule names the route checks (documentation; the handler enforces them). */
  readonly rules?: readonly string[];
  readonly params?: z.ZodType<P>;
  readonly query?: z.ZodType<Q>;
  readonly body?: z.ZodType<B>;
  /** Largest accepted body in bytes (default: the server's). */
  readonly bodyLimit?: number;
  handler(ctx: RouteContext<P, Q, B>): Promise<RouteAnswer>;
}

/**
 * Declares a route with its handler's input types inferred from its schemas; the result is an
 * untyped {@link RouteSpec} that lists of routes hold.
 */
export function route<P = unknown, Q = unknown, B = unknown>(spec: RouteSpec<P, Q, B>): RouteSpec {
  return spec as unknown as RouteSpec;
}

/**
 * Validates one part of a request with its schema.
 * @throws ApiFault 400 naming the first invalid field (`body.server.name`, `query.limit`)
 */
export function validatePart<T>(schema: z.ZodType<T> | undefined, value: unknown, part: string): T {
  if (!schema) return value as T;
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue?.path.length ? `${part}.${issue.path.join('.')}` : part;
  const message = issue ? issue.message : 'invalid';
  throw new ApiFault(400, `Invalid input for field/attribute ${path}: ${message}`, { field: path });
}

/** Converts a route's schemas into an OpenAPI 3.1 operation. */
export function openApiOperation(spec: RouteSpec<unknown, unknown, unknown>): Record<string, unknown> {
  const op: Record<string, unknown> = {
    summary: spec.summary,
    tags: [spec.service],
    responses: { default: { description: 'The answer, or an error body in the service’s format.' } },
  };
  if (spec.auth !== 'none') op.security = [{ token: [] }];
  if (spec.rules?.length) op['x-policy-rules'] = spec.rules;
  const parameters: unknown[] = [];
  for (const name of pathParams(spec.url))
    parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } });
  if (spec.query) {
    const schema = toSchema(spec.query) as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, s] of Object.entries(schema.properties ?? {}))
      parameters.push({ name, in: 'query', required: schema.required?.includes(name) ?? false, schema: s });
  }
  if (parameters.length) op.parameters = parameters;
  if (spec.body) op.requestBody = { content: { 'application/json': { schema: toSchema(spec.body) } } };
  return op;
}

/** `/v2.1/servers/:serverId` -> `/v2.1/servers/{serverId}`. */
export function openApiPath(url: string): string {
  return url.replace(/:(\w+)/g, '{$1}');
}

function pathParams(url: string): string[] {
  return [...url.matchAll(/:(\w+)/g)].map((m) => m[1]!);
}

function toSchema(schema: z.ZodType): unknown {
  try {
    return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  } catch {
    return {};
  }
}
