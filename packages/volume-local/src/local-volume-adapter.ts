import { execFile } from 'node:child_process';
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  type BlockDevice,
  DuplicateError,
  type Instance,
  NotFoundError,
  ValidationError,
  type VolumeAdapter,
  type VolumeRequest,
} from '@nova-lfs/core';

const run = promisify(execFile);

/** A volume's file format. */
export type LocalVolumeFormat = 'raw' | 'qcow2';

/** A local volume: one file under the adapter's data directory, plus its record. */
export interface LocalVolume {
  readonly id: string;
  readonly sizeMiB: number;
  readonly format: LocalVolumeFormat;
  /** Absolute path of the volume's file. */
  readonly path: string;
  /** The instance it is connected to, if any. */
  readonly attachedTo?: string;
  /** Guest device it was asked for (e.g. `vdb`). */
  readonly device?: string;
}

/** What {@link LocalVolumeAdapter.create} makes. */
export interface CreateLocalVolume {
  /** Letters, digits, `-` and `_` (it names the file). */
  readonly id: string;
  readonly sizeMiB: number;
  /** Default `raw`. */
  readonly format?: LocalVolumeFormat;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/**
 * Core's `VolumeAdapter` over plain files: each volume is `<dataDir>/<id>.<raw|qcow2>` with a JSON
 * record beside it saying which instance it is connected to. `connect` hands the driver a
 * `BlockDevice` whose `connection` is `{ type: 'file', path, format }` (what a hypervisor on the
 * same machine opens directly); one volume is connected to at most one instance. For tests and
 * small single-machine setups; LVM and Ceph adapters are separate.
 */
export class LocalVolumeAdapter implements VolumeAdapter {
  constructor(readonly dataDir: string) {}

  /**
   * Creates an empty volume: a sparse raw file, or a qcow2 image made by `qemu-img` (argv, no shell).
   * @throws ValidationError naming `id`, `sizeMiB` or `format`; DuplicateError if the id exists.
   */
  async create(request: CreateLocalVolume): Promise<LocalVolume> {
    const format = request.format ?? 'raw';
    const issues = [
      ...(ID.test(request.id) ? [] : [issue('id', 'pattern', 'letters, digits, - and _ only (1-128)')]),
      ...(Number.isInteger(request.sizeMiB) && request.sizeMiB > 0 && request.sizeMiB <= 16 * 1024 * 1024
        ? []
        : [issue('sizeMiB', 'range', 'a whole number of MiB from 1 to 16 TiB')]),
      ...(format === 'raw' || format === 'qcow2' ? [] : [issue('format', 'enum', 'raw or qcow2')]),
    ];
    if (issues.length) throw new ValidationError(issues);
    await mkdir(this.dataDir, { recursive: true, mode: 0o755 });
    if (await this.find(request.id)) throw new DuplicateError('volume', request.id);
    const path = join(this.dataDir, `${request.id}.${format}`);
    if (format === 'raw') {
      const f = await open(path, 'wx', 0o644);
      try {
        await f.truncate(request.sizeMiB * 2 ** 20);
      } finally {
        await f.close();
      }
    } else {
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', path, `${request.sizeMiB}M`]);
    }
    const volume: LocalVolume = { id: request.id, sizeMiB: request.sizeMiB, format, path };
    await this.save(volume);
    return volume;
  }

  /** The volume's record. @throws NotFoundError naming `volumeId`. */
  async get(id: string): Promise<LocalVolume> {
    const v = await this.find(id);
    if (!v) throw new NotFoundError('volume', id, 'volumeId');
    return v;
  }

  /**
   * Deletes a volume's file and record; resolves if there is none.
   * @throws ValidationError naming `volumeId` while it is connected to an instance.
   */
  async delete(id: string): Promise<void> {
    const v = await this.find(id);
    if (!v) return;
    if (v.attachedTo)
      throw new ValidationError([
        issue('volumeId', 'in-use', `volume ${id} is attached to instance ${v.attachedTo}`),
      ]);
    await rm(v.path, { force: true });
    await rm(this.recordPath(id), { force: true });
  }

  /**
   * Connects the requested volumes to `instance` and returns their block devices. Idempotent for
   * volumes already connected to it.
   * @throws NotFoundError naming `volumeId` for a missing volume; ValidationError naming it when it
   *   is connected to another instance (nothing is connected then).
   */
  async connect(
    instance: Instance,
    _hostId: string,
    requests: readonly VolumeRequest[],
  ): Promise<BlockDevice[]> {
    const volumes = await Promise.all(requests.map((r) => this.get(r.volumeId)));
    for (const v of volumes)
      if (v.attachedTo && v.attachedTo !== instance.id)
        throw new ValidationError([
          issue('volumeId', 'in-use', `volume ${v.id} is attached to instance ${v.attachedTo}`),
        ]);
    const out: BlockDevice[] = [];
    for (const [i, v] of volumes.entries()) {
      const device = requests[i]?.device ?? v.device;
      await this.save({ ...v, attachedTo: instance.id, ...(device ? { device } : {}) });
      out.push({
        volumeId: v.id,
        ...(device ? { device } : {}),
        connection: { type: 'file', path: v.path, format: v.format },
      });
    }
    return out;
  }

  /** Disconnects the volumes `volumeIds` (every volume when omitted) connected to `instance`. Idempotent. */
  async disconnect(instance: Instance, _hostId: string, volumeIds?: readonly string[]): Promise<void> {
    for (const v of await this.list()) {
      if (v.attachedTo !== instance.id || (volumeIds && !volumeIds.includes(v.id))) continue;
      const { attachedTo: _a, device: _d, ...rest } = v;
      await this.save(rest);
    }
  }

  /** Every volume. */
  async list(): Promise<LocalVolume[]> {
    const names = await readdir(this.dataDir).catch(() => [] as string[]);
    const out: LocalVolume[] = [];
    for (const n of names.filter((f) => f.endsWith('.json')).sort()) {
      const v = await this.find(n.slice(0, -'.json'.length));
      if (v) out.push(v);
    }
    return out;
  }

  private recordPath(id: string): string {
    return join(this.dataDir, `${id}.json`);
  }

  private async find(id: string): Promise<LocalVolume | undefined> {
    if (!ID.test(id)) return undefined;
    try {
      return JSON.parse(await readFile(this.recordPath(id), 'utf8')) as LocalVolume;
    } catch {
      return undefined;
    }
  }

  /** Writes the record atomically (temporary file, then rename). */
  private async save(v: LocalVolume): Promise<void> {
    const tmp = `${this.recordPath(v.id)}.tmp`;
    await writeFile(tmp, JSON.stringify(v), { mode: 0o644 });
    await rename(tmp, this.recordPath(v.id));
  }
}

function issue(path: string, rule: string, message: string) {
  return { path, rule, message };
}
