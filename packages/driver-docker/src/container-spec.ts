import type { Instance, PortBinding } from '@nova-lfs/core';
import type Dockerode from 'dockerode';
import {
  containerName,
  HOST_LABEL,
  INSTANCE_LABEL,
  METADATA_LABEL_PREFIX,
  NAME_LABEL,
  PROJECT_LABEL,
} from './labels.js';

/** Options that shape every container. */
export interface ContainerSpecOptions {
  /** Nova LFS host id stamped on containers (`nova-lfs.host`). */
  readonly hostId: string;
  /** Maximum processes per container (default 1024). */
  readonly pidsLimit: number;
  /** Command when neither the image nor the metadata gives one. */
  readonly defaultCommand: readonly string[];
}

/** Image property / metadata key holding the command as a JSON array of strings. */
export const COMMAND_KEY = 'command';

function parseCommand(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return v;
  } catch {
    // not JSON: ignored, the default applies
  }
  return undefined;
}

/**
 * The Engine API create request for an instance: limits from the flavor (NanoCpus, Memory,
 * PidsLimit), labels from the instance (uuid, project, host, display name, metadata), network
 * mode `none` unless a port binding names one (`binding.networkMode`). Values travel as JSON,
 * so names and metadata with shell or JSON metacharacters are inert.
 */
export function containerSpec(
  instance: Instance,
  imageRef: string,
  imageProperties: Readonly<Record<string, string | undefined>>,
  ports: readonly PortBinding[],
  options: ContainerSpecOptions,
): Dockerode.ContainerCreateOptions {
  const labels: Record<string, string> = {
    [INSTANCE_LABEL]: instance.id,
    [PROJECT_LABEL]: instance.projectId,
    [HOST_LABEL]: options.hostId,
    [NAME_LABEL]: instance.name,
  };
  for (const [k, v] of Object.entries(instance.metadata)) labels[`${METADATA_LABEL_PREFIX}${k}`] = v;
  const cmd = parseCommand(instance.metadata[COMMAND_KEY]) ??
    parseCommand(imageProperties[COMMAND_KEY]) ?? [...options.defaultCommand];
  const networkMode = ports.find((p) => p.binding?.networkMode)?.binding?.networkMode ?? 'none';
  return {
    name: containerName(instance.id),
    Image: imageRef,
    Cmd: cmd,
    Labels: labels,
    Hostname: `nova-${instance.id.slice(0, 8)}`,
    Env: [`NOVA_LFS_INSTANCE=${instance.id}`],
    HostConfig: {
      NanoCpus: instance.flavor.vcpus * 1e9,
      Memory: instance.flavor.ramMb * 1024 * 1024,
      PidsLimit: options.pidsLimit,
      NetworkMode: networkMode,
      RestartPolicy: { Name: 'no' },
    },
  };
}
