/**
 * `@nova-lfs/cli`: the `nova-lfs` command. `nova-lfs serve` runs identity, compute and image
 * endpoints over the engine; {@link runServe} does the same from code.
 * @packageDocumentation
 */
export { type RunningService, runServe, type ServeOutput } from './serve/serve-command.js';
export {
  networkAdapterOf,
  parseServeArgs,
  type ServeOptions,
  serveHelp,
  UsageError,
} from './serve/serve-options.js';
export {
  parseVolumeArgs,
  runVolume,
  type VolumeArgs,
  volumeHelp,
  volumeMain,
} from './volume/volume-command.js';
