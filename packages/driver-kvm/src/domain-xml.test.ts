import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { DomainSpec } from './domain-spec.js';
import { buildDomainXml, parseInstanceMetadata } from './domain-xml.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'nlfs-xml-'));

const base: DomainSpec = {
  name: 'nova-6f1c1a8e-5a4b-4c3d-9e2f-1a2b3c4d5e6f',
  uuid: '6f1c1a8e-5a4b-4c3d-9e2f-1a2b3c4d5e6f',
  virtType: 'qemu',
  memoryMiB: 256,
  vcpus: 2,
  arch: 'x86_64',
  machine: 'pc',
  disks: [{ path: '/var/lib/nova-lfs/kvm/x/disk.qcow2', format: 'qcow2', target: 'vda' }],
  serialLogPath: '/var/lib/nova-lfs/kvm/x/console.log',
  metadata: {
    instanceId: '6f1c1a8e-5a4b-4c3d-9e2f-1a2b3c4d5e6f',
    projectId: 'p1',
    hostId: 'kvm-1',
    displayName: 'web',
    flavorId: 'm1.small',
    imageId: 'cirros',
  },
};

async function validate(xml: string): Promise<void> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.xml`);
  writeFileSync(file, xml);
  await run('virt-xml-validate', [file, 'domain']);
}

describe('domain XML', () => {
  const hostile = `</name><devices><disk type='file'><source file='/etc/shadow'/></disk></devices>"&amp;'; rm -rf / $(reboot) \`id\``;

  it.each([
    ['disk boot', base],
    [
      'direct kernel boot with initrd and cmdline',
      { ...base, kernel: '/boot/vmlinuz', initrd: '/tmp/i.gz', cmdline: 'console=ttyS0 quiet', disks: [] },
    ],
    [
      'kvm, several disks',
      {
        ...base,
        virtType: 'kvm' as const,
        disks: [...base.disks, { path: '/d/b.raw', format: 'raw' as const, target: 'vdb' }],
      },
    ],
    [
      'hostile display name and ids',
      { ...base, metadata: { ...base.metadata, displayName: hostile, projectId: 'p<&>"' } },
    ],
  ])("validates against libvirt's schema: %s", async (_name, spec) => {
    const xml = buildDomainXml(spec);
    await validate(xml);
    expect(parseInstanceMetadata(xml)).toEqual(spec.metadata);
  });

  it('keeps hostile values as text: one name, one disk, nothing injected', () => {
    const xml = buildDomainXml({ ...base, metadata: { ...base.metadata, displayName: hostile } });
    expect(xml.match(/<name>/g)).toHaveLength(1);
    expect(xml.match(/<disk /g)).toHaveLength(1);
    expect(xml).not.toContain("/etc/shadow'/>");
    expect(xml).toContain('&lt;/name&gt;');
    expect(parseInstanceMetadata(xml)?.displayName).toBe(hostile);
  });

  it('ignores domains without Nova LFS metadata', () => {
    expect(parseInstanceMetadata("<domain type='qemu'><name>other</name></domain>")).toBeUndefined();
  });
});
