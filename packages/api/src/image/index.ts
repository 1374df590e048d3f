export type { GlanceImage } from './image-catalog.js';
export { migrateImageTables } from './image-migrations.js';
export { imagePolicies } from './image-policies.js';
export { type ImageRecordRegistration, registerImageRecord } from './image-record.js';
export { defaultMaxImageBytes, type ImageApiOptions, imageRouteSpecs, imageRoutes } from './image-routes.js';
export type { ImageStatus, ImageVisibility } from './image-tables.js';
