/**
 * `@nova-lfs/driver-docker`: containers as Nova LFS instances through the Docker Engine API.
 * @packageDocumentation
 */
export { demuxLogs } from './console-log.js';
export { COMMAND_KEY, type ContainerSpecOptions, containerSpec } from './container-spec.js';
export {
  DOCKER_MIN_MEMORY_MB,
  DockerDriver,
  type DockerDriverOptions,
  dockerCapabilities,
} from './docker-driver.js';
export {
  DockerErrorCode,
  type DockerFailureClass,
  DockerScopeConflictError,
  DockerUnavailableError,
  dockerRetryable,
  dockerStatus,
  wrapDockerError,
} from './errors.js';
export { DockerEventStream } from './event-stream.js';
export { ImageLoader } from './image-loader.js';
export {
  containerName,
  HOST_LABEL,
  INSTANCE_LABEL,
  imageReference,
  METADATA_LABEL_PREFIX,
  NAME_LABEL,
  PROJECT_LABEL,
} from './labels.js';
export { type ContainerStateView, powerStateOf, powerStateOfAction } from './power-state.js';
export { dockerDriverToken, registerDockerDriver } from './register.js';
