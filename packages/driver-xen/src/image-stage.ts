import { randomUUID } from 'node:crypto';
import { copyFile, link, mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { LocalArtifact } from '@nova-lfs/core';

/**
 * Image files where dom0 can read them. libxl reads a PV kernel and initramfs from dom0's file
 * system, so each cached artifact is hard-linked (or, across file systems, copied) once into
 * `localDir`, named by its sha256, and referred to by the same name under `dom0Dir` (the folder
 * as dom0 sees it: the same path when the driver runs in dom0, or a shared folder). A copy goes
 * to a temporary name first and is renamed into place, so dom0 never sees a half-written file.
 */
export class ImageStage {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    /** The staging folder as this process sees it. */
    readonly localDir: string,
    /** The same folder as dom0 sees it. */
    readonly dom0Dir: string,
  ) {}

  /** Stages `artifact` (once per content) and returns its path as dom0 sees it. */
  stage(artifact: LocalArtifact): Promise<string> {
    const name = artifact.image.sha256 ?? basename(artifact.path);
    let p = this.pending.get(name);
    if (!p) {
      p = this.place(artifact.path, name).finally(() => this.pending.delete(name));
      this.pending.set(name, p);
    }
    return p;
  }

  private async place(source: string, name: string): Promise<string> {
    const target = join(this.localDir, name);
    const exists = await stat(target).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!exists) {
      await mkdir(this.localDir, { recursive: true, mode: 0o755 });
      const tmp = join(this.localDir, `.${name}.${randomUUID()}`);
      try {
        await link(source, tmp).catch(() => copyFile(source, tmp));
        await rename(tmp, target);
      } finally {
        await rm(tmp, { force: true });
      }
    }
    return join(this.dom0Dir, name);
  }
}
