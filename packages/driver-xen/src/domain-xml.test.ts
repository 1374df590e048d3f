import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode } from '@nova-lfs/core';
import { describe, expect, it } from 'vitest';
import type { XenDomainSpec } from './domain-spec.js';
import { buildXenDomainXml, parseXenInstanceMetadata } from './domain-xml.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'nlfs-xen-xml-'));

const pv: XenDomainSpec = {
  name: 'nova-6f1c1a8e-5a4b-4c3d-9e2f-1a2b3c4d5e6f',
  uuid: '6f1c1a8e-5a4b-4c3d-9e2f-1a2b3c4d5e6f',
  guestType: 'pv',
  memoryMiB: 128,
  vcpus: 1,
  kernel: '/var/lib/nova-lfs/xen/images/vmlinuz',
  initrd: '/var/lib/nova-lfs/xen/images/initrd.gz',
  cmdline: 'console=hvc0 quiet',
  disks: [],
  metadata: {
    instanceId: '6f1c1a8e-5a4b-4c3d-9e2f-1a2b3c4d5e6f',
    projectId: 'p1',
    hostId: 'xen-1',
    displayName: 'web',
    flavorId: 'm1.tiny',
    imageId: 'guest',
  },
};

async function validate(xml: string): Promise<void> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.xml`);
  writeFileSync(file, xml);
  await run('virt-xml-validate', [file, 'domain']);
}

describe('Xen domain XML', () => {
  const hostile = `</name><devices><disk type='file'><source file='/etc/shadow'/></disk></devices>"&amp;'; rm -rf / $(reboot) \`id\`\n<x>`;

  it.each([
    ['PV, direct kernel boot', pv],
    [
      'PV with a qcow2 and a raw disk',
      {
        ...pv,
        disks: [
          { path: '/d/a.qcow2', format: 'qcow2' as const, target: 'xvda' },
          { path: '/d/b.raw', format: 'raw' as const, target: 'xvdb' },
        ],
      },
    ],
    ['PVH, direct kernel boot', { ...pv, guestType: 'pvh' as const }],
    [
      'HVM from a disk (hvmloader)',
      {
        ...pv,
        guestType: 'hvm' as const,
        kernel: undefined,
        initrd: undefined,
        cmdline: undefined,
        disks: [{ path: '/d/a.qcow2', format: 'qcow2' as const, target: 'xvda' }],
      },
    ],
    ['HVM with direct kernel boot', { ...pv, guestType: 'hvm' as const, cmdline: 'console=ttyS0' }],
    [
      'hostile display name and ids',
      { ...pv, metadata: { ...pv.metadata, displayName: hostile, projectId: 'p<&>"\'' } },
    ],
  ])("validates against libvirt's schema: %s", async (_name, spec) => {
    const xml = buildXenDomainXml(spec);
    await validate(xml);
    expect(xml).toContain('<domain type="xen">');
    expect(parseXenInstanceMetadata(xml)).toEqual(spec.metadata);
  });

  it('writes the guest type as libvirt expects it', () => {
    expect(buildXenDomainXml(pv)).toMatch(/<type arch="x86_64" machine="xenpv">xen<\/type>/);
    expect(buildXenDomainXml({ ...pv, guestType: 'pvh' })).toMatch(/machine="xenpvh">xenpvh</);
    const hvm = buildXenDomainXml({ ...pv, guestType: 'hvm' });
    expect(hvm).toMatch(/machine="xenfv">hvm</);
    expect(hvm).toContain('<loader type="rom">/usr/lib/xen-4.17/boot/hvmloader</loader>');
    expect(buildXenDomainXml(pv)).toMatch(/<console type="pty">\s*<target type="xen" port="0"\/>/);
  });

  it('keeps hostile values as text: one name, no disk, nothing injected', () => {
    const xml = buildXenDomainXml({ ...pv, metadata: { ...pv.metadata, displayName: hostile } });
    expect(xml.match(/<name>/g)).toHaveLength(1);
    expect(xml).not.toContain('<disk');
    expect(xml).toContain('&lt;/name&gt;');
    expect(parseXenInstanceMetadata(xml)?.displayName).toBe(hostile);
  });

  it.each([
    [
      'a NUL in the display name',
      { ...pv, metadata: { ...pv.metadata, displayName: 'a\u0000b' } },
      'metadata.displayName',
      0,
    ],
    [
      'an ESC in the project',
      { ...pv, metadata: { ...pv.metadata, projectId: 'p\u001b[31m' } },
      'metadata.projectId',
      0x1b,
    ],
    ['a lone surrogate in the kernel command line', { ...pv, cmdline: 'quiet \ud800' }, 'cmdline', 0xd800],
    [
      'U+FFFF in a disk path',
      { ...pv, disks: [{ path: '/d/\uffff', format: 'raw' as const, target: 'xvda' }] },
      'disks[0].path',
      0xffff,
    ],
  ])('refuses %s with a typed error naming the field', (_name, spec, field, codePoint) => {
    expect(() => buildXenDomainXml(spec)).toThrow(
      expect.objectContaining({ code: ErrorCode.XenXmlValue, details: { field, codePoint } }),
    );
  });

  it('ignores domains without Nova LFS metadata', () => {
    expect(parseXenInstanceMetadata("<domain type='xen'><name>other</name></domain>")).toBeUndefined();
  });
});
