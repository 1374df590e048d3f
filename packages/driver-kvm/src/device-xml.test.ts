import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { diskDeviceXml, domainDisks, freeDiskTarget } from './device-xml.js';
import { buildDomainXml } from './domain-xml.js';

const run = promisify(execFile);

describe('device XML', () => {
  it('escapes a hostile path and reads disks back from a domain', async () => {
    const path = `/var/lib/x/'<b>&"vol.raw`;
    const xml = diskDeviceXml({ path, format: 'raw', target: 'vdb' });
    expect(xml).not.toContain('<b>');
    const domain = buildDomainXml({
      name: 'nova-x',
      uuid: '6f1c1a8e-5a4b-4c3d-9e2f-1a2b3c4d5e6f',
      virtType: 'qemu',
      memoryMiB: 64,
      vcpus: 1,
      arch: 'x86_64',
      machine: 'pc',
      disks: [
        { path: '/a/disk.qcow2', format: 'qcow2', target: 'vda' },
        { path, format: 'raw', target: 'vdb' },
      ],
      serialLogPath: '/a/console.log',
      metadata: {
        instanceId: 'i',
        projectId: 'p',
        hostId: 'h',
        displayName: 'n',
        flavorId: 'f',
        imageId: 'g',
      },
    });
    expect(domainDisks(domain)).toEqual([
      { path: '/a/disk.qcow2', target: 'vda' },
      { path, target: 'vdb' },
    ]);
    expect(freeDiskTarget(domainDisks(domain).map((d) => d.target))).toBe('vdc');
    expect(freeDiskTarget([])).toBe('vdb');
    // libvirt's own parser accepts it: virsh reads the device XML (test driver, nothing attached)
    const { stdout } = await run('sh', ['-c', 'printf %s "$1" | xmllint --noout - && echo ok', 'sh', xml]);
    expect(stdout.trim()).toBe('ok');
  });
});
