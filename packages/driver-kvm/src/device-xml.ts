import { create } from 'xmlbuilder2';

/** A file-backed virtio disk as the driver attaches it. */
export interface DiskDevice {
  /** Host path of the file. */
  readonly path: string;
  readonly format: 'raw' | 'qcow2';
  /** Guest device, e.g. `vdb`. */
  readonly target: string;
}

/** libvirt `<disk>` XML of a file-backed virtio disk, built with an escaping XML builder. */
export function diskDeviceXml(disk: DiskDevice): string {
  const d = create().ele('disk', { type: 'file', device: 'disk' });
  d.ele('driver', { name: 'qemu', type: disk.format });
  d.ele('source', { file: disk.path });
  d.ele('target', { dev: disk.target, bus: 'virtio' });
  return d.end({ headless: true });
}

/** The disks of a domain XML: source file, target device and (in the live definition) alias of each. */
export function domainDisks(xml: string): { path?: string; target: string; alias?: string }[] {
  const root = create(xml).root().node as unknown as {
    getElementsByTagName(name: string): ArrayLike<{
      getElementsByTagName(name: string): ArrayLike<{ getAttribute(n: string): string | null }>;
      getAttribute(n: string): string | null;
    }>;
  };
  const out: { path?: string; target: string; alias?: string }[] = [];
  const disks = root.getElementsByTagName('disk');
  for (let i = 0; i < disks.length; i++) {
    const disk = disks[i];
    const target = disk?.getElementsByTagName('target')[0]?.getAttribute('dev');
    if (!target) continue;
    const path = disk?.getElementsByTagName('source')[0]?.getAttribute('file') ?? undefined;
    const alias = disk?.getElementsByTagName('alias')[0]?.getAttribute('name') ?? undefined;
    out.push({ target, ...(path ? { path } : {}), ...(alias ? { alias } : {}) });
  }
  return out;
}

/** The first virtio disk name (`vdb`, `vdc`, ... `vdz`) not in `used`; undefined when all are taken. */
export function freeDiskTarget(used: readonly string[]): string | undefined {
  for (let c = 'b'.charCodeAt(0); c <= 'z'.charCodeAt(0); c++) {
    const t = `vd${String.fromCharCode(c)}`;
    if (!used.includes(t)) return t;
  }
  return undefined;
}
