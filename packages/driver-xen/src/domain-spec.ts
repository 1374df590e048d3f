/** How a Xen guest is virtualized: paravirtualized, PVH (PV in an HVM container) or fully virtualized. */
export type XenGuestType = 'pv' | 'pvh' | 'hvm';

/** A disk attached to a Xen domain. */
export interface XenDiskSpec {
  /** Path of the image file as dom0 sees it. */
  readonly path: string;
  readonly format: 'qcow2' | 'raw';
  /** Guest device, e.g. `xvda`. */
  readonly target: string;
}

/** What identifies a domain as a Nova LFS instance (stored in `<metadata>`). */
export interface XenInstanceMetadata {
  readonly instanceId: string;
  readonly projectId: string;
  readonly hostId: string;
  readonly displayName: string;
  readonly flavorId: string;
  readonly imageId: string;
}

/** A typed Xen domain description from which the XML is generated. */
export interface XenDomainSpec {
  /** libvirt domain name (derived from the uuid, never from user input). */
  readonly name: string;
  readonly uuid: string;
  readonly guestType: XenGuestType;
  readonly memoryMiB: number;
  readonly vcpus: number;
  /** Direct kernel boot (required for PV and PVH; optional for HVM), paths as dom0 sees them. */
  readonly kernel?: string;
  readonly initrd?: string;
  readonly cmdline?: string;
  readonly disks: readonly XenDiskSpec[];
  /** HVM firmware loader (default Debian's `/usr/lib/xen-4.17/boot/hvmloader`). */
  readonly hvmLoader?: string;
  readonly metadata: XenInstanceMetadata;
}
