import { create } from 'xmlbuilder2';
import type { DomainSpec, InstanceMetadata } from './domain-spec.js';
import { appendInterface } from './interface-xml.js';

/** XML namespace of Nova LFS's `<metadata>` element. */
export const NOVA_LFS_XML_NS = 'https://nova-lfs.dev/xmlns/instance/1.0';

/**
 * xmlbuilder2 leaves text that already looks like an entity (`&amp;`, `&#60;`) unescaped, to avoid
 * double encoding; values here are literal, so such ampersands are escaped first.
 */
function literal(value: string): string {
  return value.replace(/&(?=#\d+;|#x[0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]*;)/g, '&amp;');
}

/**
 * Generates libvirt domain XML from a typed spec with a real XML builder: every value is escaped,
 * so names and metadata with XML or shell metacharacters cannot change the document's structure.
 */
export function buildDomainXml(spec: DomainSpec): string {
  const doc = create({ version: '1.0' });
  const domain = doc.ele('domain', { type: spec.virtType });
  domain.ele('name').txt(literal(spec.name));
  domain.ele('uuid').txt(literal(spec.uuid));
  domain.ele('title').txt(literal(spec.metadata.displayName.replace(/[\r\n]/g, ' ')));
  const meta = domain.ele('metadata').ele(NOVA_LFS_XML_NS, 'nova:instance');
  meta.ele(NOVA_LFS_XML_NS, 'nova:id').txt(literal(spec.metadata.instanceId));
  meta.ele(NOVA_LFS_XML_NS, 'nova:project').txt(literal(spec.metadata.projectId));
  meta.ele(NOVA_LFS_XML_NS, 'nova:host').txt(literal(spec.metadata.hostId));
  meta.ele(NOVA_LFS_XML_NS, 'nova:name').txt(literal(spec.metadata.displayName));
  meta.ele(NOVA_LFS_XML_NS, 'nova:flavor').txt(literal(spec.metadata.flavorId));
  meta.ele(NOVA_LFS_XML_NS, 'nova:image').txt(literal(spec.metadata.imageId));
  domain.ele('memory', { unit: 'MiB' }).txt(literal(String(spec.memoryMiB)));
  domain.ele('vcpu').txt(literal(String(spec.vcpus)));
  const os = domain.ele('os');
  os.ele('type', { arch: spec.arch, machine: spec.machine }).txt('hvm');
  if (spec.kernel) os.ele('kernel').txt(literal(spec.kernel));
  if (spec.initrd) os.ele('initrd').txt(literal(spec.initrd));
  if (spec.cmdline) os.ele('cmdline').txt(literal(spec.cmdline));
  if (!spec.kernel) os.ele('boot', { dev: 'hd' });
  domain.ele('features').ele('acpi');
  domain.ele('on_poweroff').txt('destroy');
  domain.ele('on_reboot').txt('restart');
  domain.ele('on_crash').txt('destroy');
  const devices = domain.ele('devices');
  for (const disk of spec.disks) {
    const d = devices.ele('disk', { type: 'file', device: 'disk' });
    d.ele('driver', { name: 'qemu', type: disk.format });
    d.ele('source', { file: literal(disk.path) });
    d.ele('target', { dev: disk.target, bus: 'virtio' });
  }
  for (const nic of spec.nics ?? []) appendInterface(devices, nic);
  const serial = devices.ele('serial', { type: 'file' });
  serial.ele('source', { path: literal(spec.serialLogPath), append: 'on' });
  serial.ele('target', { port: '0' });
  devices.ele('memballoon', { model: 'none' });
  return doc.end({ prettyPrint: true });
}

/** Reads Nova LFS's metadata back from domain XML; `undefined` for domains that are not ours. */
export function parseInstanceMetadata(xml: string): InstanceMetadata | undefined {
  const root = create(xml).root().node as unknown as {
    getElementsByTagNameNS(ns: string, name: string): ArrayLike<{ textContent: string | null }>;
  };
  const field = (name: string): string =>
    root.getElementsByTagNameNS(NOVA_LFS_XML_NS, name)[0]?.textContent ?? '';
  const instanceId = field('id');
  if (!instanceId) return undefined;
  return {
    instanceId,
    projectId: field('project'),
    hostId: field('host'),
    displayName: field('name'),
    flavorId: field('flavor'),
    imageId: field('image'),
  };
}
