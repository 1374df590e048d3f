import type { CgroupVersion } from './cgroup-limits.js';
import { LxcConfigValueError } from './errors.js';
import { TAG } from './names.js';

/**
 * Where the boot script is bind-mounted inside the container (on the `/dev` tmpfs that
 * `lxc.autodev` makes, so the image's rootfs is not touched).
 */
export const BOOT_SCRIPT_TARGET = 'dev/.nova-lfs-boot';

/**
 * The init a container runs when the image brings none of its own: print a boot line on the
 * console, then wait; SIGTERM (the driver's `lxc.signal.halt`) ends it cleanly. `lxc.init.cmd` is
 * split on spaces without quoting, so the script is a file, not a `sh -c` argument.
 */
export const DEFAULT_BOOT_SCRIPT = [
  'exec </dev/null >/dev/console 2>&1',
  'echo "nova-lfs: instance $NOVA_LFS_INSTANCE booted"',
  "trap 'exit 0' TERM",
  'while :; do sleep 1; done',
  '',
].join('\n');

/** Capabilities dropped as Debian's `common.conf` does. */
export const DROPPED_CAPABILITIES = ['mac_admin', 'mac_override', 'sys_time', 'sys_module', 'sys_rawio'];

/** Character devices a container may use (those of Debian's `common.conf`). */
const ALLOWED_DEVICES = [
  'c *:* m',
  'b *:* m',
  'c 1:3 rwm',
  'c 1:5 rwm',
  'c 1:7 rwm',
  'c 5:0 rwm',
  'c 5:1 rwm',
  'c 5:2 rwm',
  'c 1:8 rwm',
  'c 1:9 rwm',
  'c 136:* rwm',
  'c 10:229 rwm',
];

/** Everything a container config is made of. No field may hold user text unescaped. */
export interface ContainerConfigSpec {
  /** Host name inside the container (already sanitized, see `hostnameOf`). */
  readonly hostname: string;
  /**
   * The rootfs as `lxc.rootfs.path` takes it: `dir:<path>` (an unpacked copy) or
   * `overlay:<base>:<upper>` (a shared read-only base and the container's own upper directory).
   */
  readonly rootfs: string;
  /** Absolute path of the console log file. */
  readonly consoleLogPath: string;
  /** Absolute path of the boot script on the host (bind-mounted read-only). */
  readonly bootScriptPath: string;
  /** Largest console log in bytes before LXC rotates it. */
  readonly consoleLogBytes: number;
  readonly instanceId: string;
  readonly projectId: string;
  readonly hostId: string;
  readonly cgroupVersion: CgroupVersion;
  /** Limit keys from `cgroupConfig`. */
  readonly limits: ReadonlyArray<readonly [string, string]>;
  /** Seccomp profile path, when there is one. */
  readonly seccompProfile?: string | undefined;
}

/**
 * Percent-encodes a text for a config value (as `encodeURIComponent`): the result has no line
 * break, `=`, `#`, space or NUL. {@link decodeTag} reverses it.
 */
export function encodeTag(text: string): string {
  return encodeURIComponent(text);
}

/** Reverses {@link encodeTag}; undefined for a malformed value. */
export function decodeTag(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

const KEY = /^lxc\.[a-z0-9_.]+$/;

/**
 * One `key = value` line. The key must be an `lxc.` key of lower-case letters, digits, `_` and
 * `.`; the value must hold no line break or NUL (which would start a line of its own).
 * @throws LxcConfigValueError otherwise.
 */
export function configLine(key: string, value: string): string {
  if (!KEY.test(key) || /[\r\n\0]/.test(value) || value !== value.trim()) throw new LxcConfigValueError(key);
  return `${key} = ${value}`;
}

/**
 * Renders the container's LXC config: no network (`lxc.net.0.type = empty`), the rootfs, `/dev`
 * from `lxc.autodev` with a `/dev/shm` tmpfs, proc/sys and a read-only view of the container's
 * own cgroups (`cgroup:mixed:force`, so it can read its limits), Debian's device allow-list and
 * dropped capabilities, the console log, the boot script as init (SIGTERM halts it), the instance
 * uuid and the percent-encoded project and host ids as `lxc.environment` entries (read back by
 * {@link readTags}), then the limits.
 */
export function renderContainerConfig(spec: ContainerConfigSpec): string {
  const devices = spec.cgroupVersion === 'v2' ? 'lxc.cgroup2.devices' : 'lxc.cgroup.devices';
  const lines: Array<readonly [string, string]> = [
    ['lxc.uts.name', spec.hostname],
    ['lxc.rootfs.path', spec.rootfs],
    ['lxc.net.0.type', 'empty'],
    ['lxc.autodev', '1'],
    ['lxc.pty.max', '16'],
    ['lxc.tty.max', '0'],
    ['lxc.mount.auto', 'proc:mixed sys:ro cgroup:mixed:force'],
    ['lxc.mount.entry', 'tmpfs dev/shm tmpfs rw,nosuid,nodev,create=dir 0 0'],
    ['lxc.mount.entry', `${spec.bootScriptPath} ${BOOT_SCRIPT_TARGET} none bind,ro,create=file 0 0`],
    ['lxc.cap.drop', DROPPED_CAPABILITIES.join(' ')],
    [`${devices}.deny`, 'a'],
    ...ALLOWED_DEVICES.map((d) => [`${devices}.allow`, d] as const),
    ...(spec.seccompProfile ? [['lxc.seccomp.profile', spec.seccompProfile] as const] : []),
    ['lxc.console.logfile', spec.consoleLogPath],
    ['lxc.console.size', String(spec.consoleLogBytes)],
    ['lxc.console.rotate', '1'],
    ['lxc.signal.halt', 'SIGTERM'],
    ['lxc.init.cmd', `/bin/sh /${BOOT_SCRIPT_TARGET}`],
    ['lxc.environment', `${TAG.instance}=${spec.instanceId}`],
    ['lxc.environment', `${TAG.project}=${encodeTag(spec.projectId)}`],
    ['lxc.environment', `${TAG.host}=${encodeTag(spec.hostId)}`],
    ...spec.limits,
  ];
  return [
    '# Written by @nova-lfs/driver-lxc; rewritten on rebuild. Holds no user text.',
    ...lines.map(([k, v]) => configLine(k, v)),
    '',
  ].join('\n');
}

/** A config as `[key, value]` pairs in file order (comments and blank lines dropped). */
export function parseConfig(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    out.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return out;
}

/** What the driver recorded in a container's config. */
export interface ContainerTags {
  readonly instanceId: string;
  readonly projectId?: string;
  readonly hostId?: string;
}

/** Reads the driver's tags back from a config; undefined when it has no instance tag. */
export function readTags(text: string): ContainerTags | undefined {
  const env = new Map<string, string>();
  for (const [key, value] of parseConfig(text)) {
    if (key !== 'lxc.environment') continue;
    const eq = value.indexOf('=');
    if (eq > 0) env.set(value.slice(0, eq), value.slice(eq + 1));
  }
  const instanceId = env.get(TAG.instance);
  if (!instanceId) return undefined;
  const projectId = env.has(TAG.project) ? decodeTag(env.get(TAG.project)!) : undefined;
  const hostId = env.has(TAG.host) ? decodeTag(env.get(TAG.host)!) : undefined;
  return {
    instanceId,
    ...(projectId !== undefined ? { projectId } : {}),
    ...(hostId !== undefined ? { hostId } : {}),
  };
}
