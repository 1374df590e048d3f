import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { type ApiHarness, type ApiHarnessOptions, apiHarness } from '../testing/api-harness.test-helper.js';
import { migrateImageTables } from './image-migrations.js';
import { type ImageApiOptions, imageRouteSpecs } from './image-routes.js';

/** The API harness serving the image routes, with their tables migrated. */
export async function imageHarness(
  image: ImageApiOptions = {},
  options: ApiHarnessOptions = {},
): Promise<ApiHarness> {
  const h = await apiHarness((services) => imageRouteSpecs(services, image), options);
  await migrateImageTables(h.services.db);
  return h;
}

/** JSON of a response. */
export function json<T = Record<string, unknown>>(res: LightMyRequestResponse): T {
  return JSON.parse(res.body) as T;
}

/** Creates a queued image as `token` and returns its JSON. */
export async function createImage(
  h: ApiHarness,
  token: string,
  body: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const res = await h.call(token, {
    method: 'POST',
    url: '/image/v2/images',
    payload: { name: 'img', disk_format: 'raw', container_format: 'bare', ...body },
  });
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`);
  return json(res);
}

/** Uploads bytes to an image as `token`. */
export function upload(
  h: ApiHarness,
  token: string,
  id: string,
  payload: InjectOptions['payload'],
): Promise<LightMyRequestResponse> {
  return h.call(token, {
    method: 'PUT',
    url: `/image/v2/images/${id}/file`,
    headers: { 'content-type': 'application/octet-stream' },
    payload,
  });
}

/** A JSON-patch request as `token`. */
export function patch(
  h: ApiHarness,
  token: string,
  id: string,
  ops: unknown,
): Promise<LightMyRequestResponse> {
  return h.call(token, {
    method: 'PATCH',
    url: `/image/v2/images/${id}`,
    headers: { 'content-type': 'application/openstack-images-v2.1-json-patch' },
    payload: JSON.stringify(ops),
  });
}
