import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxRootfs } from '@nova-lfs/driver-docker/testing';
import { libvirtAvailable, startLibvirtCommand } from '@nova-lfs/driver-kvm/testing';
import { installLxcCommand, lxcUnavailableReason } from '@nova-lfs/driver-lxc/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAdminToken } from '../testing/serve-process.js';
import { type RunningService, runServe } from './serve-command.js';
import { parseServeArgs } from './serve-options.js';
import { freePort } from './serve-process.test-helper.js';

const lxcMissing = await lxcUnavailableReason();
const libvirtUp = await libvirtAvailable();
const missing = lxcMissing
  ? `LXC: ${lxcMissing} (${installLxcCommand})`
  : !libvirtUp
    ? `libvirtd (${startLibvirtCommand})`
    : undefined;
if (missing) {
  if (process.env.CI === 'true') throw new Error(`CI=true and ${missing} is missing`);
  console.warn(`skipping serve with LXC and KVM hosts: ${missing}`);
}

const password = 'local-hosts-secret';
const suffix = `${process.pid}`;

describe.runIf(!missing)('nova-lfs serve with an LXC host and a KVM host (real LXC 5, real libvirtd)', () => {
  let service: RunningService;
  let dir: string;
  let token: string;
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${service.url}${path}`, {
      ...init,
      headers: { 'x-auth-token': token, 'content-type': 'application/json', ...(init.headers ?? {}) },
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nlfs-serve-local-'));
    const port = await freePort();
    const options = parseServeArgs([
      '--listen',
      `127.0.0.1:${port}`,
      '--data-dir',
      join(dir, 'data'),
      '--admin-password',
      password,
      '--lxc-host',
      `lxc-${suffix}`,
      '--kvm-host',
      `kvm-${suffix}`,
      '--log-level',
      'silent',
    ]);
    if (options === 'help') throw new Error('help');
    service = await runServe(options, { print: () => undefined });
    ({ token } = await issueAdminToken(service.url, password));
  });

  afterAll(async () => {
    await service?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists both hypervisors with their types', async () => {
    const r = await call('/v2.1/os-hypervisors/detail', {
      headers: { 'openstack-api-version': 'compute 2.53' },
    });
    expect(r.status).toBe(200);
    const { hypervisors } = (await r.json()) as {
      hypervisors: { hypervisor_hostname: string; hypervisor_type: string; state: string }[];
    };
    // the LXC host is named by its option; a KVM host by its libvirt host's name
    expect(hypervisors.find((h) => h.hypervisor_hostname === `lxc-${suffix}`)?.hypervisor_type).toBe('lxc');
    expect(hypervisors.filter((h) => /^(qemu|kvm)$/i.test(h.hypervisor_type))).toHaveLength(1);
    expect(hypervisors).toHaveLength(2);
    for (const h of hypervisors) expect(h.state).toBe('up');
  });

  it('boots a container on the LXC host from an image uploaded through the image API, and deletes it', async () => {
    const tar = join(dir, 'busybox.tar');
    await makeBusyboxRootfs(tar);
    const created = await call('/image/v2/images', {
      method: 'POST',
      body: JSON.stringify({
        name: 'busybox',
        disk_format: 'raw',
        container_format: 'docker',
        hypervisor_type: 'lxc',
      }),
    });
    expect(created.status).toBe(201);
    const imageId = ((await created.json()) as { id: string }).id;
    const { readFile } = await import('node:fs/promises');
    const upload = await call(`/image/v2/images/${imageId}/file`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: await readFile(tar),
    });
    expect(upload.status).toBe(204);
    const server = await call('/v2.1/servers', {
      method: 'POST',
      body: JSON.stringify({ server: { name: 'c1', imageRef: imageId, flavorRef: '1', networks: 'none' } }),
      headers: { 'openstack-api-version': 'compute 2.37' },
    });
    expect(server.status).toBe(202);
    const id = ((await server.json()) as { server: { id: string } }).server.id;
    const done = await waitFor(service, id, async () => {
      const s = (await (await call(`/v2.1/servers/${id}`)).json()) as { server: Record<string, string> };
      return s.server.status === 'ACTIVE' || s.server.status === 'ERROR' ? s.server : undefined;
    });
    expect(done.status).toBe('ACTIVE');
    expect(done['OS-EXT-SRV-ATTR:host']).toBe(`lxc-${suffix}`);
    const console = await call(`/v2.1/servers/${id}/action`, {
      method: 'POST',
      body: JSON.stringify({ 'os-getConsoleOutput': {} }),
    });
    expect(console.status).toBe(200);
    expect((await call(`/v2.1/servers/${id}`, { method: 'DELETE' })).status).toBe(204);
    await waitFor(service, id, async () =>
      (await call(`/v2.1/servers/${id}`)).status === 404 ? true : undefined,
    );
  });
});

/**
 * Asks the API until `probe` answers, once now and again at each engine event of the server (no
 * sleeping); fails after 60 s.
 */
async function waitFor<T>(
  service: RunningService,
  id: string,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const next = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5_000);
      const sub = service.engine.watch(id).subscribe({
        next: () => {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve();
        },
        complete: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await next;
  }
}
