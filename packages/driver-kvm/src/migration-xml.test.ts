import { describe, expect, it } from 'vitest';
import { parseInstanceMetadata } from './domain-xml.js';
import { domainMoveFacts, filesUnder, retargetDomainXml } from './migration-xml.js';

const xml = `<domain type='qemu' id='3'><name>nova-x</name>
<metadata><nova:instance xmlns:nova="https://nova-lfs.dev/xmlns/instance/1.0"><nova:id>x</nova:id><nova:host>a</nova:host></nova:instance></metadata>
<os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type><kernel>/images/k</kernel><initrd>/images/i</initrd></os>
<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>
<devices>
<disk type='file' device='disk'><source file='/s/a/x/disk.qcow2'/><target dev='vda'/></disk>
<disk type='file' device='cdrom'><source file='/images/cd.iso'/><readonly/></disk>
<serial type='file'><source path='/s/a/x/console.log' append='on'/></serial>
<console type='file'><source path='/s/a/x/console.log'/></console>
</devices></domain>`;

describe('migration XML', () => {
  it('reads what the pre-checks need: virt type, arch, machine, the CPU element, writable disks', () => {
    expect(domainMoveFacts(xml)).toEqual({
      virtType: 'qemu',
      arch: 'x86_64',
      machine: 'pc-i440fx-7.2',
      cpuXml: '<cpu mode="custom" match="exact" check="none"><model fallback="forbid">qemu64</model></cpu>',
      diskFiles: ['/s/a/x/disk.qcow2'],
      bootFiles: ['/images/k', '/images/i'],
    });
    expect(
      domainMoveFacts("<domain type='kvm'><os><type arch='x86_64'>hvm</type></os></domain>").cpuXml,
    ).toBeUndefined();
  });

  it("retargets the host id and every file under the source's instance directory, nothing else", () => {
    const out = retargetDomainXml(xml, { hostId: 'b', fromDir: '/s/a/x', toDir: '/s/b/x' });
    expect(parseInstanceMetadata(out)?.hostId).toBe('b');
    expect(filesUnder(out, '/s/a/x')).toEqual([]);
    expect(filesUnder(out, '/s/b/x').sort()).toEqual(['/s/b/x/console.log', '/s/b/x/disk.qcow2']);
    expect(out).toContain('<kernel>/images/k</kernel>');
    expect(out).toContain('/images/cd.iso');
    // a sibling directory sharing the prefix is not "under" it
    expect(filesUnder(xml, '/s/a/x2')).toEqual([]);
  });

  it("links and retargets the instance's own kernel and initramfs links with its disks", () => {
    const own = xml.replace('/images/k', '/s/a/x/boot-k').replace('/images/i', '/s/a/x/boot-i');
    expect(filesUnder(own, '/s/a/x').sort()).toEqual([
      '/s/a/x/boot-i',
      '/s/a/x/boot-k',
      '/s/a/x/console.log',
      '/s/a/x/disk.qcow2',
    ]);
    const out = retargetDomainXml(own, { hostId: 'b', fromDir: '/s/a/x', toDir: '/s/b/x' });
    expect(out).toContain('<kernel>/s/b/x/boot-k</kernel>');
    expect(out).toContain('<initrd>/s/b/x/boot-i</initrd>');
  });
});
