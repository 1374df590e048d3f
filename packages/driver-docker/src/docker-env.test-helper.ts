import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Image, LocalImageService } from '@nova-lfs/core';
import Dockerode from 'dockerode';
import { INSTANCE_LABEL } from './labels.js';
import { dockerAvailable, makeBusyboxRootfs, startDockerCommand } from './testing/index.js';

/** dockerd availability, decided once per test file. With CI=true a missing dockerd is an error. */
export const available = await dockerAvailable();
if (!available) {
  const reason = `dockerd is not reachable on /var/run/docker.sock; start it with: ${startDockerCommand}`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping Docker driver tests: ${reason}`);
}

/** An image service holding the busybox rootfs as image `busybox` (`tar`: the rootfs tarball's path). */
export async function busyboxImages(): Promise<{ images: LocalImageService; image: Image; tar: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'nlfs-docker-'));
  const tar = join(dir, 'busybox.tar');
  await makeBusyboxRootfs(tar);
  const images = new LocalImageService(join(dir, 'images'));
  const image = await images.import(
    {
      id: 'busybox',
      name: 'busybox',
      diskFormat: 'tar',
      containerFormat: 'docker',
      properties: { hypervisorType: 'docker' },
    },
    { kind: 'file', path: tar },
  );
  return { images, image, tar };
}

/** Removes every container a test host left (by its host label). */
export async function removeHostContainers(hostId: string): Promise<number> {
  const docker = new Dockerode();
  const list = await docker.listContainers({
    all: true,
    filters: { label: [INSTANCE_LABEL, `nova-lfs.host=${hostId}`] },
  });
  for (const c of list) await docker.getContainer(c.Id).remove({ force: true });
  return list.length;
}
