import { type ApiFault, faultNameOf, type ServiceKind } from './api-fault.js';

const titles: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

/** The reason phrase of a status. */
export function titleOf(status: number): string {
  return titles[status] ?? 'Error';
}

/**
 * The error body a service answers, in its own conventions: Nova's `{"itemNotFound": {"code",
 * "message"}}`, Keystone's `{"error": {"code", "message", "title"}}` (also every 401, which
 * keystonemiddleware answers for Nova and Glance) and Glance's `{"code", "title", "message"}`.
 * `details` are included only when `withDetails` (an administrator asking).
 */
export function faultBody(service: ServiceKind, fault: ApiFault, withDetails: boolean): unknown {
  const { status } = fault;
  if (service === 'identity' || status === 401)
    return { error: { code: status, message: fault.message, title: titleOf(status) } };
  if (service === 'image') return { code: status, title: titleOf(status), message: fault.message };
  const name = fault.extra.faultName ?? faultNameOf(status);
  const body: Record<string, unknown> = { code: status, message: fault.message };
  if (withDetails && fault.extra.details !== undefined) body.details = fault.extra.details;
  return { [name]: body };
}
