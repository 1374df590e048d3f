import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseVolumeArgs, volumeHelp, volumeMain } from './volume-command.js';

const root = mkdtempSync(join(tmpdir(), 'nlfs-volume-cmd-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await volumeMain(args, { print: (l) => out.push(l), error: (l) => err.push(l) }, env);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('nova-lfs volume', () => {
  it('creates (a sparse raw file of the size), lists and deletes volumes under DIR/volumes', async () => {
    const dir = join(root, 'data');
    const created = await run(['create', '--data-dir', dir, '--id', 'data-1', '--size-mib', '16']);
    expect(created).toMatchObject({ code: 0, err: '' });
    const volume = JSON.parse(created.out);
    expect(volume).toEqual({
      id: 'data-1',
      sizeMiB: 16,
      format: 'raw',
      path: join(dir, 'volumes', 'data-1.raw'),
    });
    expect(statSync(volume.path).size).toBe(16 * 2 ** 20);
    expect(statSync(volume.path).blocks).toBeLessThan(64); // sparse

    // $NOVA_LFS_DATA_DIR as serve takes it
    const listed = await run(['list'], { NOVA_LFS_DATA_DIR: dir });
    expect(JSON.parse(listed.out)).toEqual([volume]);
    const twice = await run(['create', '--data-dir', dir, '--id', 'data-1', '--size-mib', '1']);
    expect(twice.code).toBe(1);
    expect(twice.err).toContain('already exists');

    expect((await run(['delete', '--data-dir', dir, '--id', 'data-1'])).code).toBe(0);
    expect(readdirSync(join(dir, 'volumes'))).toEqual([]);
    const gone = await run(['delete', '--data-dir', dir, '--id', 'data-1']);
    expect(gone.code).toBe(1);
    expect(gone.err).toContain('data-1');
  });

  it('--volume-dir VDIR names the directory itself', async () => {
    const vdir = join(root, 'vols');
    expect((await run(['create', '--volume-dir', vdir, '--id', 'v', '--size-mib', '1'])).code).toBe(0);
    expect(readdirSync(vdir).sort()).toEqual(['v.json', 'v.raw']);
  });

  it('refuses bad command lines with exit code 2 naming the option, and creates nothing', async () => {
    const dir = join(root, 'bad');
    for (const [args, message] of [
      [['create', '--data-dir', dir, '--id', '../../etc/x', '--size-mib', '1'], '--id: must be 1-128'],
      [['create', '--data-dir', dir, '--id', 'a_b', '--size-mib', '1'], '--id: must be 1-128'],
      [['create', '--data-dir', dir, '--id', `a;rm -rf /`, '--size-mib', '1'], '--id: must be 1-128'],
      [['create', '--data-dir', dir, '--id', 'a'.repeat(129), '--size-mib', '1'], '--id: must be 1-128'],
      [['create', '--data-dir', dir, '--id', 'a', '--size-mib', '0'], '--size-mib: must be at least 1'],
      [['create', '--data-dir', dir, '--id', 'a', '--size-mib', '-5'], 'size-mib'],
      [['create', '--data-dir', dir, '--id', 'a', '--size-mib', '1e3'], '--size-mib: must be a whole number'],
      [
        ['create', '--data-dir', dir, '--id', 'a', '--size-mib', '99999999'],
        '--size-mib: must be at most 16 TiB',
      ],
      [['create', '--data-dir', dir, '--id', 'a', '--size-mib', '1', '--format', 'vmdk'], '--format'],
      [['create', '--data-dir', dir, '--size-mib', '1'], '--id: required'],
      [['create', '--data-dir', dir, '--id', 'a'], '--size-mib: required'],
      [['list', '--data-dir', dir, '--id', 'a'], '--id: not taken'],
      [['resize', '--data-dir', dir], 'unknown command "resize"'],
      [['create', '--data-dir', dir, '--volume-dir', dir, '--id', 'a', '--size-mib', '1'], 'give one'],
      [['create', '--bogus'], "Unknown option '--bogus'"],
    ] as const) {
      const r = await run([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toContain(message);
    }
    expect(() => readdirSync(join(dir, 'volumes'))).toThrow();
  });

  it('prints its help', async () => {
    expect(parseVolumeArgs(['--help'])).toBe('help');
    expect((await run(['--help'])).out).toBe(volumeHelp);
    expect((await run([])).code).toBe(2);
  });
});
