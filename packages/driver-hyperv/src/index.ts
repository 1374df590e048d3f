/**
 * `@nova-lfs/driver-hyperv`: Hyper-V VMs as Nova LFS instances, driven by the Hyper-V PowerShell
 * module over OpenSSH (ssh2). Tested against the project's FAKE Hyper-V host only (see README).
 * @packageDocumentation
 */
export {
  buildCommand,
  DEFAULT_MAX_COMMAND_LENGTH,
  decodeCommand,
  encodeArgs,
  POWERSHELL_PREFIX,
  parseErrorRecord,
  parseResult,
  type ScriptArgs,
  type ScriptRun,
} from './command.js';
export {
  classifyErrorRecord,
  type HyperVCommandDetails,
  HyperVCommandError,
  HyperVCommandTooLongError,
  HyperVConnectionError,
  HyperVErrorCode,
  type HyperVFailureClass,
  type HyperVFailureKind,
  HyperVSettingError,
  type PowerShellErrorRecord,
  wrapHyperVError,
} from './errors.js';
export {
  HyperVDriver,
  type HyperVDriverOptions,
  hyperVCapabilities,
  parseVmNotes,
  powerStateOf,
  VM_PREFIX,
  type VmNotes,
  vmName,
  vmNotesSchema,
} from './hyperv-driver.js';
export { hyperVDriverToken, registerHyperVDriver } from './register.js';
export { SCRIPT_NAMES, type ScriptName, scriptManifest, scriptSha256, scriptText } from './scripts.js';
export {
  HyperVShell,
  type HyperVShellOptions,
  type HyperVSshOptions,
  type ShellCallOptions,
  sshFingerprint,
} from './ssh-shell.js';
export { fixedVhdFooter, VHD_ALIGNMENT_BYTES, VHD_FOOTER_BYTES, vhdDataBytes, vhdGeometry } from './vhd.js';
