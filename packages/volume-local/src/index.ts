/**
 * `@nova-lfs/volume-local`: core's VolumeAdapter over local raw or qcow2 files.
 * @packageDocumentation
 */
export {
  type CreateLocalVolume,
  type LocalVolume,
  LocalVolumeAdapter,
  type LocalVolumeFormat,
} from './local-volume-adapter.js';
