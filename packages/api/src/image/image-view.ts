import type { GlanceImage } from './image-catalog.js';

/** Glance's time format: ISO 8601 to the second, `Z`. */
export function glanceTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The image object Glance answers (bare, no wrapper key): base attributes, then the extra
 * properties flattened beside them. The hash is the engine's sha256 (`os_hash_algo: "sha256"`),
 * not Glance's default sha512; `checksum` is the md5 once known; `stores` (`fs`) once there is data,
 * as a single-store Glance shows it.
 */
export function imageView(image: GlanceImage): Record<string, unknown> {
  const hasData = image.sha256 !== null;
  return {
    ...image.properties,
    id: image.id,
    name: image.name,
    status: image.status,
    visibility: image.visibility,
    protected: image.protected,
    os_hidden: image.osHidden,
    owner: image.owner,
    checksum: image.checksum,
    os_hash_algo: hasData ? 'sha256' : null,
    os_hash_value: image.sha256,
    size: image.size,
    virtual_size: null,
    disk_format: image.diskFormat,
    container_format: image.containerFormat,
    min_disk: image.minDisk,
    min_ram: image.minRam,
    tags: [...image.tags],
    created_at: glanceTime(image.createdAt),
    updated_at: glanceTime(image.updatedAt),
    self: `/v2/images/${image.id}`,
    file: `/v2/images/${image.id}/file`,
    schema: '/v2/schemas/image',
    ...(hasData ? { stores: 'fs' } : {}),
  };
}
