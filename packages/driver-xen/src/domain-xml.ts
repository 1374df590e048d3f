import { create } from 'xmlbuilder2';
import type { XenDomainSpec, XenInstanceMetadata } from './domain-spec.js';
import { XenXmlValueError } from './errors.js';

/** XML namespace of Nova LFS's `<metadata>` element (the same as the KVM driver's). */
export const NOVA_LFS_XML_NS = 'https://nova-lfs.dev/xmlns/instance/1.0';

/** Debian's HVM firmware loader of Xen 4.17. */
export const DEFAULT_HVM_LOADER = '/usr/lib/xen-4.17/boot/hvmloader';

/** Characters XML 1.0 can carry (its `Char` production); everything else has no escape. */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/**
 * Returns `value` if XML 1.0 can carry it; otherwise throws {@link XenXmlValueError} naming
 * `field` and the first character it cannot represent (NUL, C0 controls other than tab, LF, CR,
 * lone surrogates, U+FFFE, U+FFFF).
 */
export function xmlText(field: string, value: string): string {
  const bad = NOT_XML_CHAR.exec(value);
  if (bad) throw new XenXmlValueError(field, bad[0].codePointAt(0) ?? 0);
  // xmlbuilder2 leaves text that already looks like an entity (`&amp;`) unescaped, to avoid double
  // encoding; values here are literal, so such ampersands are escaped first.
  return value.replace(/&(?=#\d+;|#x[0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]*;)/g, '&amp;');
}

/** The `<os><type>` of each guest type: machine attribute and type text. */
const OS_TYPE = {
  pv: { machine: 'xenpv', text: 'xen' },
  pvh: { machine: 'xenpvh', text: 'xenpvh' },
  hvm: { machine: 'xenfv', text: 'hvm' },
} as const;

/**
 * Generates libvirt domain XML (`type='xen'`, for the libxl driver) from a typed spec with a real
 * XML builder: every value is escaped, so names and metadata with XML or shell metacharacters
 * cannot change the document's structure; a value XML cannot carry is refused with
 * {@link XenXmlValueError} naming its field. PV and PVH guests boot their kernel directly and get
 * the Xen PV console (`hvc0`); HVM guests get hvmloader, ACPI/APIC/PAE and a serial console.
 */
export function buildXenDomainXml(spec: XenDomainSpec): string {
  const m = spec.metadata;
  const doc = create({ version: '1.0' });
  const domain = doc.ele('domain', { type: 'xen' });
  domain.ele('name').txt(xmlText('name', spec.name));
  domain.ele('uuid').txt(xmlText('uuid', spec.uuid));
  // libvirt refuses a title with a line break
  domain.ele('title').txt(xmlText('metadata.displayName', m.displayName.replace(/[\r\n]/g, ' ')));
  const meta = domain.ele('metadata').ele(NOVA_LFS_XML_NS, 'nova:instance');
  meta.ele(NOVA_LFS_XML_NS, 'nova:id').txt(xmlText('metadata.instanceId', m.instanceId));
  meta.ele(NOVA_LFS_XML_NS, 'nova:project').txt(xmlText('metadata.projectId', m.projectId));
  meta.ele(NOVA_LFS_XML_NS, 'nova:host').txt(xmlText('metadata.hostId', m.hostId));
  meta.ele(NOVA_LFS_XML_NS, 'nova:name').txt(xmlText('metadata.displayName', m.displayName));
  meta.ele(NOVA_LFS_XML_NS, 'nova:flavor').txt(xmlText('metadata.flavorId', m.flavorId));
  meta.ele(NOVA_LFS_XML_NS, 'nova:image').txt(xmlText('metadata.imageId', m.imageId));
  domain.ele('memory', { unit: 'MiB' }).txt(String(Math.trunc(spec.memoryMiB)));
  domain.ele('vcpu').txt(String(Math.trunc(spec.vcpus)));
  const os = domain.ele('os');
  const type = OS_TYPE[spec.guestType];
  os.ele('type', { arch: 'x86_64', machine: type.machine }).txt(type.text);
  if (spec.guestType === 'hvm')
    os.ele('loader', { type: 'rom' }).txt(xmlText('hvmLoader', spec.hvmLoader ?? DEFAULT_HVM_LOADER));
  if (spec.kernel) os.ele('kernel').txt(xmlText('kernel', spec.kernel));
  if (spec.initrd) os.ele('initrd').txt(xmlText('initrd', spec.initrd));
  if (spec.cmdline) os.ele('cmdline').txt(xmlText('cmdline', spec.cmdline));
  if (spec.guestType === 'hvm' && !spec.kernel) os.ele('boot', { dev: 'hd' });
  if (spec.guestType === 'hvm') {
    const features = domain.ele('features');
    features.ele('acpi');
    features.ele('apic');
    features.ele('pae');
  }
  domain.ele('on_poweroff').txt('destroy');
  domain.ele('on_reboot').txt('restart');
  domain.ele('on_crash').txt('destroy');
  const devices = domain.ele('devices');
  spec.disks.forEach((disk, n) => {
    const d = devices.ele('disk', { type: 'file', device: 'disk' });
    d.ele('driver', { name: 'qemu', type: disk.format });
    d.ele('source', { file: xmlText(`disks[${n}].path`, disk.path) });
    d.ele('target', { dev: xmlText(`disks[${n}].target`, disk.target), bus: 'xen' });
  });
  if (spec.guestType === 'hvm') devices.ele('serial', { type: 'pty' }).ele('target', { port: '0' });
  devices
    .ele('console', { type: 'pty' })
    .ele('target', { type: spec.guestType === 'hvm' ? 'serial' : 'xen', port: '0' });
  return doc.end({ prettyPrint: true });
}

/** Reads Nova LFS's metadata back from domain XML; `undefined` for domains that are not ours. */
export function parseXenInstanceMetadata(xml: string): XenInstanceMetadata | undefined {
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
