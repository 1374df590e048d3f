import { randomUUID } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ErrorCode, isNovaError } from '@nova-lfs/core';
import { z } from 'zod';
import { callerOf } from '../compute/resources/resource-common.js';
import { ApiFault, conflict } from '../http/api-fault.js';
import type { ApiServices } from '../http/api-services.js';
import { type AuthContext, isAdmin } from '../http/auth-context.js';
import { type RouteSpec, route } from '../http/route.js';
import type { PolicyTarget } from '../policy/policy-engine.js';
import { type GlanceImage, ImageCatalog } from './image-catalog.js';
import { parseCreation } from './image-create-request.js';
import { imageSchemaDocument, imagesSchemaDocument, versionsDocument } from './image-documents.js';
import { canSee, echoQuery, listImages, type QueryValue } from './image-listing.js';
import { migrateImageTables } from './image-migrations.js';
import { applyPatch, patchBodySchema } from './image-patch.js';
import { imagePolicies } from './image-policies.js';
import { maxTags, tagSchema, toEngineProperties } from './image-properties.js';
import { receiveUpload, tooLarge } from './image-upload.js';
import { imageView } from './image-view.js';

/** Options of {@link imageRoutes}. */
export interface ImageApiOptions {
  /**
   * Directory for uploads in progress (created when first needed; each upload's file is removed
   * when it ends). Default `<os tmpdir>/nova-lfs-api-uploads-<pid>`.
   */
  readonly uploadDir?: string;
  /** Largest image accepted by `PUT /v2/images/{id}/file`, in bytes; larger ones get 413. Default 10 GiB. */
  readonly maxImageBytes?: number;
  /** Clock (epoch ms) for `created_at` / `updated_at`. Default `Date.now`. */
  readonly now?: () => number;
}

/** The default largest upload: 10 GiB. */
export const defaultMaxImageBytes = 10 * 1024 ** 3;

const PATCH_TYPE = 'application/openstack-images-v2.1-json-patch';
const idParams = z.object({ imageId: z.string().min(1).max(255) });
const tagParams = z.object({ imageId: z.string().min(1).max(255), tag: z.string().max(1024) });
const listQuery = z.record(
  z.string(),
  z.union([z.string().max(1024), z.array(z.string().max(1024)).max(64)]),
);
const createBody = z.record(z.string(), z.unknown()).optional();

/**
 * Migrates the image tables, registers Glance's default policy rules and returns the routes of
 * the Glance-compatible Image v2 API under `/image`: version documents, images (list, show,
 * create, update by JSON patch, delete), their data (upload, download), tags and schemas. Images
 * the engine has without a record (imported through the SDK, snapshots) are listed too.
 * @throws Error when the image tables cannot be migrated
 */
export async function imageRoutes(
  services: ApiServices,
  options: ImageApiOptions = {},
): Promise<RouteSpec[]> {
  await migrateImageTables(services.db);
  return imageRouteSpecs(services, options);
}

/**
 * The routes of {@link imageRoutes}, with the policy defaults registered; the image tables must
 * have been migrated (`migrateImageTables`).
 */
export function imageRouteSpecs(services: ApiServices, options: ImageApiOptions = {}): RouteSpec[] {
  services.policy.register(imagePolicies);
  const now = options.now ?? Date.now;
  const catalog = new ImageCatalog(services, now);
  const uploadDir = options.uploadDir ?? join(tmpdir(), `nova-lfs-api-uploads-${process.pid}`);
  const maxImageBytes = options.maxImageBytes ?? defaultMaxImageBytes;
  const authorize = (rule: string, auth: AuthContext, target: PolicyTarget) =>
    services.policy.authorize(rule, auth, target);

  /** The image if the caller may see it (Glance's 404 otherwise), after `get_image`. */
  async function visible(id: string, auth: AuthContext): Promise<GlanceImage> {
    const image = await catalog.get(id);
    if (!image || !canSee(image, auth, isAdmin(auth))) throw notFound(id);
    authorize('get_image', auth, targetOf(image, auth));
    return image;
  }

  function authorizeVisibility(visibility: string, auth: AuthContext, target: PolicyTarget): void {
    if (visibility === 'public') authorize('publicize_image', auth, target);
    if (visibility === 'community') authorize('communitize_image', auth, target);
  }

  const versions = (status: number) => async () => ({ status, body: versionsDocument(services.urls.image) });

  return [
    route({
      method: 'GET',
      url: '/image',
      service: 'image',
      summary: 'Image API versions',
      auth: 'none',
      handler: versions(300),
    }),
    route({
      method: 'GET',
      url: '/image/versions',
      service: 'image',
      summary: 'Image API versions',
      auth: 'none',
      handler: versions(200),
    }),
    route({
      method: 'GET',
      url: '/image/v2/schemas/image',
      service: 'image',
      summary: 'The JSON schema of an image',
      handler: async () => ({ status: 200, body: imageSchemaDocument() }),
    }),
    route({
      method: 'GET',
      url: '/image/v2/schemas/images',
      service: 'image',
      summary: 'The JSON schema of an image list',
      handler: async () => ({ status: 200, body: imagesSchemaDocument() }),
    }),
    route({
      method: 'GET',
      url: '/image/v2/images',
      service: 'image',
      summary: 'List images',
      rules: ['get_images'],
      query: listQuery,
      handler: async ({ auth, query }) => {
        const caller = callerOf(auth);
        authorize('get_images', caller, { project_id: caller.projectId });
        const q = query as Record<string, QueryValue>;
        const page = listImages(await catalog.all(), q, caller, isAdmin(caller));
        const body: Record<string, unknown> = {
          images: page.images.map((i) => imageView(i)),
          first: `/v2/images${echoQuery(q)}`,
          schema: '/v2/schemas/images',
        };
        if (page.nextMarker !== undefined) body.next = `/v2/images${echoQuery(q, page.nextMarker)}`;
        return { status: 200, body };
      },
    }),
    route({
      method: 'GET',
      url: '/image/v2/images/:imageId',
      service: 'image',
      summary: 'Show an image',
      rules: ['get_image'],
      params: idParams,
      handler: async ({ auth, params }) => {
        const image = await visible(params.imageId, callerOf(auth));
        return { status: 200, body: imageView(await catalog.withChecksum(image)) };
      },
    }),
    route({
      method: 'POST',
      url: '/image/v2/images',
      service: 'image',
      summary: 'Create an image (queued, without data)',
      rules: ['add_image', 'publicize_image', 'communitize_image'],
      body: createBody,
      handler: async ({ auth, request }) => {
        const caller = callerOf(auth);
        // the raw body: a schema's output would have dropped a `__proto__` key silently
        const raw = (request.body ?? {}) as Record<string, unknown>;
        const c = parseCreation(raw, caller, isAdmin(caller));
        const target = { project_id: c.owner };
        authorize('add_image', caller, target);
        authorizeVisibility(c.visibility, caller, target);
        const id = c.id ?? randomUUID();
        if (await catalog.exists(id)) throw conflict(`Image with identifier ${id} already exists!`);
        const t = now();
        const image = await catalog.save({
          id,
          name: c.name,
          status: 'queued',
          visibility: c.visibility,
          protected: c.protected,
          osHidden: c.osHidden,
          owner: c.owner,
          minDisk: c.minDisk,
          minRam: c.minRam,
          diskFormat: c.diskFormat,
          containerFormat: c.containerFormat,
          checksum: null,
          sha256: null,
          size: null,
          tags: c.tags,
          properties: c.properties,
          createdAt: t,
          updatedAt: t,
          recorded: true,
        });
        return {
          status: 201,
          body: imageView(image),
          headers: { Location: `${services.urls.image}/v2/images/${id}` },
        };
      },
    }),
    route({
      method: 'PATCH',
      url: '/image/v2/images/:imageId',
      service: 'image',
      summary: 'Update an image (JSON patch)',
      rules: ['modify_image', 'publicize_image', 'communitize_image'],
      params: idParams,
      handler: async ({ auth, params, request }) => {
        const caller = callerOf(auth);
        const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (type !== PATCH_TYPE)
          throw new ApiFault(415, `Unsupported Content-Type: use ${PATCH_TYPE}`, {
            headers: { 'Accept-Patch': PATCH_TYPE },
          });
        const image = await visible(params.imageId, caller);
        authorize('modify_image', caller, targetOf(image, caller));
        const ops = patchBody(request.body);
        const changes = applyPatch(image, ops, { admin: isAdmin(caller) });
        if (changes.visibility !== image.visibility)
          authorizeVisibility(changes.visibility, caller, targetOf(image, caller));
        const saved = await catalog.save({ ...image, ...changes, updatedAt: now() });
        return { status: 200, body: imageView(saved) };
      },
    }),
    route({
      method: 'DELETE',
      url: '/image/v2/images/:imageId',
      service: 'image',
      summary: 'Delete an image and its data',
      rules: ['delete_image'],
      params: idParams,
      handler: async ({ auth, params }) => {
        const caller = callerOf(auth);
        const image = await visible(params.imageId, caller);
        authorize('delete_image', caller, targetOf(image, caller));
        if (image.protected) throw new ApiFault(403, `Image ${image.id} is protected and cannot be deleted.`);
        await services.engine.images.remove(image.id);
        await catalog.forget(image.id);
        return { status: 204 };
      },
    }),
    route({
      method: 'PUT',
      url: '/image/v2/images/:imageId/file',
      service: 'image',
      summary: 'Upload the data of a queued image (application/octet-stream)',
      rules: ['upload_image'],
      params: idParams,
      handler: async ({ auth, params, request }) => {
        const caller = callerOf(auth);
        const image = await visible(params.imageId, caller);
        authorize('upload_image', caller, targetOf(image, caller));
        if (image.status !== 'queued')
          throw conflict(`Image status transition from ${image.status} to saving is not allowed`);
        if (!image.diskFormat || !image.containerFormat)
          throw new ApiFault(
            400,
            'Properties disk_format, container_format must be set prior to saving data.',
            {
              field: image.diskFormat ? 'container_format' : 'disk_format',
            },
          );
        const declared = Number(request.headers['content-length'] ?? Number.NaN);
        if (Number.isFinite(declared) && declared > maxImageBytes) throw tooLarge(maxImageBytes);
        if (!(await catalog.transition(image.id, 'queued', 'saving')))
          throw conflict(`Image ${image.id} is not queued any more`);
        let received: Awaited<ReturnType<typeof receiveUpload>> | undefined;
        try {
          received = await receiveUpload(request.body as Readable | undefined, {
            dir: uploadDir,
            maxBytes: maxImageBytes,
          });
          const imported = await services.engine.images.import(
            {
              id: image.id,
              name: image.name ? image.name : image.id,
              diskFormat: image.diskFormat as 'raw',
              containerFormat: image.containerFormat as 'bare',
              sha256: received.sha256,
              properties: toEngineProperties(image.properties),
            },
            { kind: 'file', path: received.path },
          );
          if (!(await catalog.transition(image.id, 'saving', 'active', { checksum: received.md5 }))) {
            await services.engine.images.remove(imported.id);
            throw new ApiFault(410, `Image ${image.id} was deleted during the upload.`);
          }
        } catch (e) {
          await catalog.transition(image.id, 'saving', 'queued');
          throw e;
        } finally {
          if (received) await rm(received.path, { force: true });
        }
        return { status: 204 };
      },
    }),
    route({
      method: 'GET',
      url: '/image/v2/images/:imageId/file',
      service: 'image',
      summary: 'Download the data of an image',
      rules: ['download_image'],
      params: idParams,
      handler: async ({ auth, params }) => {
        const caller = callerOf(auth);
        const found = await visible(params.imageId, caller);
        authorize('download_image', caller, targetOf(found, caller));
        if (found.status !== 'active') return { status: 204 };
        const image = await catalog.withChecksum(found);
        let path: string;
        try {
          path = (await services.engine.images.acquire(image.id)).path;
        } catch (e) {
          if (isNovaError(e) && (e.code === ErrorCode.NotFound || e.code === ErrorCode.ImageChecksum))
            throw new ApiFault(503, 'The data of this image is not available at the moment.');
          throw e;
        }
        const handle = await open(path, 'r');
        const size = (await handle.stat()).size;
        const headers: Record<string, string> = {
          'Content-Type': 'application/octet-stream',
          'Content-Length': String(size),
        };
        if (image.checksum) headers['Content-MD5'] = image.checksum;
        return { status: 200, headers, body: handle.createReadStream() };
      },
    }),
    route({
      method: 'PUT',
      url: '/image/v2/images/:imageId/tags/:tag',
      service: 'image',
      summary: 'Add a tag to an image',
      rules: ['modify_image'],
      params: tagParams,
      handler: async ({ auth, params }) => {
        const caller = callerOf(auth);
        const tag = parseTag(params.tag);
        const image = await visible(params.imageId, caller);
        authorize('modify_image', caller, targetOf(image, caller));
        if (!image.tags.includes(tag)) {
          if (image.tags.length >= maxTags)
            throw new ApiFault(413, `Maximum number of tags (${maxTags}) exceeded.`, { field: 'path.tag' });
          await catalog.save({ ...image, tags: [...image.tags, tag], updatedAt: now() });
        }
        return { status: 204 };
      },
    }),
    route({
      method: 'DELETE',
      url: '/image/v2/images/:imageId/tags/:tag',
      service: 'image',
      summary: 'Remove a tag from an image',
      rules: ['modify_image'],
      params: tagParams,
      handler: async ({ auth, params }) => {
        const caller = callerOf(auth);
        const tag = parseTag(params.tag);
        const image = await visible(params.imageId, caller);
        authorize('modify_image', caller, targetOf(image, caller));
        if (!image.tags.includes(tag)) throw new ApiFault(404, `Tag ${tag} not found`);
        await catalog.save({ ...image, tags: image.tags.filter((t) => t !== tag), updatedAt: now() });
        return { status: 204 };
      },
    }),
  ];
}

/** The policy target of an image for a caller (see `imagePolicies`). */
function targetOf(image: GlanceImage, auth: AuthContext): PolicyTarget {
  const everyone = image.visibility === 'public' || image.visibility === 'community';
  return {
    project_id: image.owner,
    member_id: everyone ? auth.projectId : null,
    visibility: image.visibility,
  };
}

function notFound(id: string): ApiFault {
  return new ApiFault(404, `No image found with ID ${id}`);
}

function parseTag(tag: string): string {
  const r = tagSchema.safeParse(tag);
  if (!r.success)
    throw new ApiFault(400, `Invalid tag: ${r.error.issues[0]?.message ?? 'invalid'}`, { field: 'path.tag' });
  return r.data;
}

function patchBody(body: unknown) {
  const r = patchBodySchema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = `body${issue?.path.length ? `.${issue.path.join('.')}` : ''}`;
  throw new ApiFault(400, `Invalid JSON patch at ${field}: ${issue?.message ?? 'invalid'}`, { field });
}
