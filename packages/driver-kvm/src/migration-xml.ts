import { create } from 'xmlbuilder2';
import { NOVA_LFS_XML_NS } from './domain-xml.js';

/** What the pre-checks of a live migration read from the source's domain XML. */
export interface DomainMoveFacts {
  /** `<domain type>`: `qemu` (TCG) or `kvm`. */
  readonly virtType: string;
  readonly arch: string;
  readonly machine: string | undefined;
  /** The `<cpu>` element as XML when the domain has one with a model (compared on the destination). */
  readonly cpuXml: string | undefined;
  /** Files of writable `<disk>`s (what needs shared storage or a copy). */
  readonly diskFiles: readonly string[];
  /** The direct-boot kernel and initramfs files (`<os><kernel>`, `<os><initrd>`). */
  readonly bootFiles: readonly string[];
}

interface DomElement {
  readonly nodeName: string;
  readonly localName: string;
  readonly namespaceURI: string | null;
  readonly attributes: ArrayLike<{ name: string; value: string }>;
  readonly childNodes: ArrayLike<DomNode>;
  textContent: string | null;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  getElementsByTagName(name: string): ArrayLike<DomElement>;
  getElementsByTagNameNS(ns: string, name: string): ArrayLike<DomElement>;
}
type DomNode = DomElement & { readonly nodeType: number };

function rootOf(xml: string): { doc: ReturnType<typeof create>; root: DomElement } {
  const doc = create(xml);
  return { doc, root: doc.root().node as unknown as DomElement };
}

function first(root: DomElement, name: string): DomElement | undefined {
  return root.getElementsByTagName(name)[0];
}

/** Reads {@link DomainMoveFacts} from a domain's XML (`virDomainGetXMLDesc`). */
export function domainMoveFacts(xml: string): DomainMoveFacts {
  const { doc, root } = rootOf(xml);
  const type = first(root, 'os')?.getElementsByTagName('type')[0];
  const cpu = first(root, 'cpu');
  const hasModel =
    cpu !== undefined && (cpu.getElementsByTagName('model')[0]?.textContent ?? '').trim() !== '';
  const cpuXml = hasModel
    ? doc
        .root()
        .find((n) => n.node.nodeName === 'cpu', false, true)
        ?.toString()
    : undefined;
  const diskFiles: string[] = [];
  const disks = root.getElementsByTagName('disk');
  for (let i = 0; i < disks.length; i++) {
    const d = disks[i]!;
    if (d.getAttribute('device') !== null && d.getAttribute('device') !== 'disk') continue;
    if (d.getElementsByTagName('readonly').length > 0 || d.getElementsByTagName('shareable').length > 0)
      continue;
    const file = d.getElementsByTagName('source')[0]?.getAttribute('file');
    if (file) diskFiles.push(file);
  }
  const os = first(root, 'os');
  const bootFiles = ['kernel', 'initrd']
    .map((tag) => (os?.getElementsByTagName(tag)[0]?.textContent ?? '').trim())
    .filter((f) => f !== '');
  return {
    virtType: root.getAttribute('type') ?? 'qemu',
    arch: type?.getAttribute('arch') ?? 'x86_64',
    machine: type?.getAttribute('machine') ?? undefined,
    cpuXml,
    diskFiles,
    bootFiles,
  };
}

function under(path: string, dir: string): boolean {
  return path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

function moved(path: string, fromDir: string, toDir: string): string {
  return toDir.replace(/\/$/, '') + path.slice(fromDir.replace(/\/$/, '').length);
}

/**
 * The domain XML for the destination: `<nova:host>` set to the destination's host id, and every
 * file under the source's instance directory (serial console, disks, `file`/`path` attributes and
 * `<kernel>`/`<initrd>` text) moved to the destination's instance directory. Everything else is
 * kept as libvirt wrote it (use `VIR_DOMAIN_XML_MIGRATABLE` XML).
 */
export function retargetDomainXml(
  xml: string,
  to: { hostId: string; fromDir: string; toDir: string },
): string {
  const { doc, root } = rootOf(xml);
  const host = root.getElementsByTagNameNS(NOVA_LFS_XML_NS, 'host')[0];
  if (host) host.textContent = to.hostId;
  const visit = (el: DomElement): void => {
    for (const attr of ['file', 'path']) {
      const v = el.getAttribute(attr);
      if (v !== null && under(v, to.fromDir)) el.setAttribute(attr, moved(v, to.fromDir, to.toDir));
    }
    if (el.localName === 'kernel' || el.localName === 'initrd') {
      const t = el.textContent ?? '';
      if (under(t, to.fromDir)) el.textContent = moved(t, to.fromDir, to.toDir);
    }
    for (let i = 0; i < el.childNodes.length; i++) {
      const c = el.childNodes[i]!;
      if (c.nodeType === 1) visit(c);
    }
  };
  visit(root);
  return doc.end({ headless: true });
}

/** Files under `dir` that the domain XML references (console log, disks, kernel, initramfs), for linking on shared storage. */
export function filesUnder(xml: string, dir: string): string[] {
  const { root } = rootOf(xml);
  const out = new Set<string>();
  const visit = (el: DomElement): void => {
    for (const attr of ['file', 'path']) {
      const v = el.getAttribute(attr);
      if (v !== null && under(v, dir)) out.add(v);
    }
    if (el.localName === 'kernel' || el.localName === 'initrd') {
      const t = el.textContent ?? '';
      if (under(t, dir)) out.add(t);
    }
    for (let i = 0; i < el.childNodes.length; i++) {
      const c = el.childNodes[i]!;
      if (c.nodeType === 1) visit(c);
    }
  };
  visit(root);
  return [...out];
}
