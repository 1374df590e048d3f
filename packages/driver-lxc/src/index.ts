/**
 * `@nova-lfs/driver-lxc`: system containers as Nova LFS instances through LXC 5's `lxc-*` tools.
 * @packageDocumentation
 */
export {
  type CgroupVersion,
  type ContainerLimits,
  cgroupConfig,
  DEFAULT_CPU_PERIOD_US,
  detectCgroupVersion,
  limitsOf,
} from './cgroup-limits.js';
export {
  BOOT_SCRIPT_TARGET,
  type ContainerConfigSpec,
  type ContainerTags,
  configLine,
  DEFAULT_BOOT_SCRIPT,
  parseConfig,
  readTags,
  renderContainerConfig,
} from './container-config.js';
export {
  type LxcCommandDetails,
  LxcCommandError,
  LxcConfigValueError,
  LxcErrorCode,
  type LxcFailureClass,
  LxcSettingError,
  LxcUnavailableError,
  wrapLxcError,
} from './errors.js';
export { LxcDriver, type LxcDriverOptions, lxcCapabilities } from './lxc-driver.js';
export { type LxcTool, LxcTools, type LxcToolsOptions } from './lxc-tools.js';
export { CONTAINER_PREFIX, containerName, hostnameOf, instanceIdOf, TAG } from './names.js';
export { PowerPoller } from './power-events.js';
export { powerStateOf } from './power-state.js';
export { lxcDriverToken, registerLxcDriver } from './register.js';
