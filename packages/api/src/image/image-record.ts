import { ApiFault } from '../http/api-fault.js';
import type { ApiServices } from '../http/api-services.js';
import { ImageCatalog } from './image-catalog.js';
import { migrateImageTables } from './image-migrations.js';
import type { ImageVisibility } from './image-tables.js';

/** What {@link registerImageRecord} records about an image the engine already has. */
export interface ImageRecordRegistration {
  readonly imageId: string;
  /** The project that owns the image (a snapshot: the instance's project). */
  readonly ownerProjectId: string;
  /** Default `private` (Nova's snapshots are private to their project). */
  readonly visibility?: ImageVisibility;
  /** The name Glance shows; default the engine image's name. */
  readonly name?: string;
}

/**
 * Records the Glance attributes of an image that exists in the engine's image service (a
 * snapshot made by the compute API's `createImage`), so `GET /v2/images` lists it with its owner
 * at once. Idempotent: a second call overwrites owner, visibility and name, keeping tags and
 * properties. Migrates the image tables if no one did yet.
 * @throws ApiFault 404 when the engine has no such image
 */
export async function registerImageRecord(
  services: Pick<ApiServices, 'engine' | 'db'>,
  registration: ImageRecordRegistration,
): Promise<void> {
  await migrateImageTables(services.db);
  const catalog = new ImageCatalog(services);
  const image = await catalog.get(registration.imageId);
  if (!image) throw new ApiFault(404, `No image found with ID ${registration.imageId}`);
  await catalog.save({
    ...image,
    owner: registration.ownerProjectId,
    visibility: registration.visibility ?? 'private',
    name: registration.name ?? image.name,
  });
}
