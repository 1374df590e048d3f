import { ErrorCode, isNovaError, type NovaError, type QuotaExceededDetails } from '@nova-lfs/core';

/** The OpenStack service whose conventions a route's answers follow. */
export type ServiceKind = 'compute' | 'identity' | 'image';

/**
 * An HTTP failure the API answers on purpose: status, message (safe to show the caller) and, for
 * validation failures, the field. Handlers throw it; the error handler formats it per service
 * (Nova's `{"itemNotFound": {...}}`, Keystone's `{"error": {...}}`, Glance's plain text).
 */
export class ApiFault extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: {
      /** Nova fault name; default from the status (`badRequest`, `itemNotFound`, ...). */
      readonly faultName?: string;
      /** The request field at fault. */
      readonly field?: string;
      /** Extra response headers (`Retry-After`, `WWW-Authenticate`). */
      readonly headers?: Readonly<Record<string, string>>;
      /** Admin-only structured detail (e.g. a NoValidHost explanation); never shown to others. */
      readonly details?: unknown;
    } = {},
  ) {
    super(message);
    this.name = 'ApiFault';
  }
}

/** 400 naming the field. */
export const badRequest = (message: string, field?: string): ApiFault =>
  new ApiFault(400, message, field === undefined ? {} : { field });
/** 404 in Nova's words. */
export const notFound = (message: string): ApiFault => new ApiFault(404, message);
/** 409. */
export const conflict = (message: string): ApiFault => new ApiFault(409, message);

/** Nova's conventional fault name per status (nova/api/openstack/wsgi.py `Fault._fault_names`). */
export function faultNameOf(status: number): string {
  switch (status) {
    case 400:
      return 'badRequest';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'itemNotFound';
    case 405:
      return 'badMethod';
    case 409:
      return 'conflictingRequest';
    case 413:
      return 'overLimit';
    case 415:
      return 'badMediaType';
    case 429:
      return 'overLimit';
    case 501:
      return 'notImplemented';
    case 503:
      return 'serviceUnavailable';
    default:
      return 'computeFault';
  }
}

/** HTTP status of an engine error code; 500 for codes the API does not expect. */
const statusByCode: Readonly<Record<string, number>> = {
  [ErrorCode.Validation]: 400,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Duplicate]: 409,
  [ErrorCode.InvalidState]: 409,
  [ErrorCode.RevisionConflict]: 409,
  [ErrorCode.QuotaExceeded]: 403,
  [ErrorCode.CapabilityUnsupported]: 409,
  [ErrorCode.ClaimConflict]: 409,
  [ErrorCode.EngineClosed]: 503,
  [ErrorCode.Storage]: 503,
  [ErrorCode.ImageChecksum]: 400,
  [ErrorCode.InstanceLocked]: 409,
  [ErrorCode.MigrationPreCheck]: 400,
  [ErrorCode.NoValidHost]: 400,
};

/**
 * The fault an error becomes. An {@link ApiFault} stays as it is; a Nova LFS error keeps its
 * message when it is the caller's doing (4xx) and becomes a generic 500 otherwise, so internal
 * detail (paths, SQL, stack) never reaches a response.
 */
export function toApiFault(error: unknown): ApiFault {
  if (error instanceof ApiFault) return error;
  if (isNovaError(error)) {
    const status = statusByCode[error.code] ?? 500;
    if (status >= 500) return new ApiFault(status, serverMessage(status), { details: { code: error.code } });
    return new ApiFault(status, messageOf(error), fieldOf(error));
  }
  const http = httpErrorOf(error);
  if (http) return http;
  return new ApiFault(500, serverMessage(500));
}

function serverMessage(status: number): string {
  return status === 503
    ? 'The service is unavailable at the moment; retry later.'
    : 'Unexpected API Error. Please report this at the operator of this cloud, with the request id.';
}

function messageOf(error: NovaError): string {
  if (error.code === ErrorCode.QuotaExceeded) {
    const d = error.details as Partial<QuotaExceededDetails>;
    if (d.resource !== undefined && d.limit !== undefined) {
      const name = quotaName(d.resource);
      const used = (d.inUse ?? 0) + (d.reserved ?? 0);
      return `Quota exceeded for ${name}: Requested ${d.requested ?? 1}, but already used ${used} of ${d.limit} ${name}`;
    }
  }
  if (error.code === ErrorCode.InvalidState) {
    const d = error.details as {
      action?: string;
      instanceId?: string;
      vmState?: string;
      taskState?: string | null;
    };
    if (d.action !== undefined && d.instanceId !== undefined) {
      // Nova's words, which the CLIs print: "Cannot 'stop' instance X while it is in vm_state stopped"
      const where = d.taskState ? `task_state ${d.taskState}` : `vm_state ${d.vmState}`;
      return `Cannot '${novaActionName(d.action)}' instance ${d.instanceId} while it is in ${where}`;
    }
  }
  return error.message;
}

/** Nova's name of an engine action in its conflict messages. */
function novaActionName(action: string): string {
  switch (action) {
    case 'reboot_hard':
      return 'reboot';
    case 'snapshot':
      return 'createImage';
    default:
      return action;
  }
}

function quotaName(resource: string): string {
  return resource === 'ramMb' ? 'ram' : resource;
}

function fieldOf(error: NovaError): { field?: string } {
  const d = error.details as { issues?: { path: string }[]; field?: string };
  const field = d.issues?.[0]?.path ?? d.field;
  return field === undefined ? {} : { field };
}

/** Fastify's own errors (malformed JSON, body too large, unsupported media type) as faults. */
function httpErrorOf(error: unknown): ApiFault | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { statusCode?: unknown; code?: unknown; message?: unknown };
  if (typeof e.statusCode !== 'number' || e.statusCode < 400 || e.statusCode >= 500) return undefined;
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiFault(400, 'Malformed request body: not valid JSON', { field: 'body' });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiFault(413, 'Request entity is too large', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiFault(415, 'Unsupported Content-Type');
    default:
      return new ApiFault(e.statusCode, typeof e.message === 'string' ? e.message : 'Bad request');
  }
}
