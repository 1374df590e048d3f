import type { NicDevice } from './interface-xml.js';

/** A disk attached to a domain. */
export interface DiskSpec {
  /** Host path of the image file. */
  readonly path: string;
  readonly format: 'qcow2' | 'raw';
  /** Guest device, e.g. `vda`. */
  readonly target: string;
}

/** What identifies a domain as a Nova LFS instance (stored in `<metadata>`). */
export interface InstanceMetadata {
  readonly instanceId: string;
  readonly projectId: string;
  readonly hostId: string;
  readonly displayName: string;
  readonly flavorId: string;
  readonly imageId: string;
}

/** A typed domain description from which the XML is generated. */
export interface DomainSpec {
  /** libvirt domain name (derived from the uuid, never from user input). */
  readonly name: string;
  readonly uuid: string;
  /** `kvm` (hardware) or `qemu` (TCG software emulation). */
  readonly virtType: 'kvm' | 'qemu';
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly arch: string;
  readonly machine: string;
  /** Direct kernel boot. */
  readonly kernel?: string;
  readonly initrd?: string;
  readonly cmdline?: string;
  readonly disks: readonly DiskSpec[];
  /** Network interfaces (from the instance's ports). */
  readonly nics?: readonly NicDevice[];
  /** File the serial console is appended to. */
  readonly serialLogPath: string;
  readonly metadata: InstanceMetadata;
}
