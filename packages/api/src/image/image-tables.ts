/** Glance's image states (`deleted` images are removed, so they are never stored). */
export const imageStatuses = ['queued', 'saving', 'active', 'deleted'] as const;
/** A Glance image status. */
export type ImageStatus = (typeof imageStatuses)[number];

/** Glance's visibilities. */
export const imageVisibilities = ['public', 'private', 'shared', 'community'] as const;
/** Who may see an image besides its owner. */
export type ImageVisibility = (typeof imageVisibilities)[number];

/**
 * The Glance-only attributes of one image (the engine's image service keeps the bytes, sha256,
 * size and formats of active images). `tags` and `properties` are JSON text (an array of strings,
 * an object of strings); times are epoch milliseconds.
 */
export type ImageRecordRow = {
  id: string;
  name: string | null;
  status: ImageStatus;
  owner: string | null;
  visibility: ImageVisibility;
  protected: number;
  os_hidden: number;
  min_disk: number;
  min_ram: number;
  disk_format: string | null;
  container_format: string | null;
  /** Lower-case hex md5 of the bytes, once known. */
  checksum: string | null;
  tags: string;
  properties: string;
  created_at: number;
  updated_at: number;
};

/** Every table of the image module. */
export type ImageTables = {
  image_record: ImageRecordRow;
};
