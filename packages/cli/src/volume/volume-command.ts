import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isNovaError } from '@nova-lfs/core';
import { LocalVolumeAdapter } from '@nova-lfs/volume-local';
import { z } from 'zod';
import { UsageError } from '../serve/serve-options.js';

/** `nova-lfs volume --help`. */
export const volumeHelp = `Usage: nova-lfs volume <create|list|delete> [options]

Manages the volumes "nova-lfs serve --volumes" (or --volume-dir VDIR) attaches: one file per
volume (the LocalVolumeAdapter). Nova has no volume create (that is Cinder's); make a volume here,
then attach it with "nova volume-attach SERVER ID" or "openstack server add volume SERVER ID".
It may run while serve does (each volume is its own files; serve reads them afresh).

Commands:
  create --id ID --size-mib N [--format raw|qcow2]   make an empty volume (raw: a sparse file;
                            qcow2 needs qemu-img); prints it as JSON
  list                      the volumes as JSON (with the server each is attached to)
  delete --id ID            delete a volume that is not attached

Options:
  --data-dir DIR            serve's data directory (default $NOVA_LFS_DATA_DIR or ./.nova-lfs);
                            the volumes are in DIR/volumes
  --volume-dir VDIR         the volume directory, when serve was given --volume-dir VDIR
  --id ID                   1-128 letters, digits and -, starting with a letter or digit
  --size-mib N              size in MiB (1 to 16 TiB)
  --format raw|qcow2        file format (default raw)
  -h, --help                this help`;

const idText = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/,
    'must be 1-128 letters, digits and -, starting with a letter or digit',
  );

const volumeArgsSchema = z.discriminatedUnion('command', [
  z.strictObject({
    command: z.literal('create'),
    volumeDir: z.string().min(1),
    id: idText,
    sizeMib: z
      .string()
      .regex(/^\d{1,9}$/, 'must be a whole number of MiB')
      .transform(Number)
      .pipe(
        z
          .int()
          .min(1, 'must be at least 1')
          .max(16 * 1024 * 1024, 'must be at most 16 TiB'),
      ),
    format: z.enum(['raw', 'qcow2']).default('raw'),
  }),
  z.strictObject({ command: z.literal('list'), volumeDir: z.string().min(1) }),
  z.strictObject({ command: z.literal('delete'), volumeDir: z.string().min(1), id: idText }),
]);

/** A validated `nova-lfs volume` command line. */
export type VolumeArgs = z.output<typeof volumeArgsSchema>;

/**
 * Parses `nova-lfs volume` arguments and the environment.
 * @returns `'help'` for `--help` (or no command)
 * @throws UsageError naming the bad option
 */
export function parseVolumeArgs(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): VolumeArgs | 'help' {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string' },
        'volume-dir': { type: 'string' },
        id: { type: 'string' },
        'size-mib': { type: 'string' },
        format: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help || parsed.positionals.length === 0) return 'help';
  const [command, ...extra] = parsed.positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (command !== 'create' && command !== 'list' && command !== 'delete')
    throw new UsageError(`unknown command "${command}": create, list or delete`);
  if (v['data-dir'] !== undefined && v['volume-dir'] !== undefined)
    throw new UsageError('--data-dir, --volume-dir: give one');
  const volumeDir =
    v['volume-dir'] !== undefined
      ? resolve(String(v['volume-dir']))
      : join(resolve(String(v['data-dir'] ?? env.NOVA_LFS_DATA_DIR ?? '.nova-lfs')), 'volumes');
  const raw: Record<string, unknown> = { command, volumeDir };
  if (command !== 'list') {
    if (v.id === undefined) throw new UsageError(`--id: required by volume ${command}`);
    raw.id = v.id;
  } else if (v.id !== undefined) throw new UsageError('--id: not taken by volume list');
  if (command === 'create') {
    if (v['size-mib'] === undefined) throw new UsageError('--size-mib: required by volume create');
    raw.sizeMib = v['size-mib'];
    if (v.format !== undefined) raw.format = v.format;
  } else if (v['size-mib'] !== undefined || v.format !== undefined)
    throw new UsageError(`--size-mib, --format: taken by volume create only`);
  const result = volumeArgsSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const flag = `--${String(issue.path[0] ?? '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new UsageError(`${flag}: ${issue.message}`);
  }
  return result.data;
}

/**
 * Runs a parsed `nova-lfs volume` command, printing JSON to `print`.
 * @throws the adapter's typed errors (an existing id: DuplicateError; deleting an attached
 *   volume: ValidationError naming `volumeId`)
 */
export async function runVolume(args: VolumeArgs, print: (line: string) => void): Promise<void> {
  const volumes = new LocalVolumeAdapter(args.volumeDir);
  switch (args.command) {
    case 'create':
      print(
        JSON.stringify(await volumes.create({ id: args.id, sizeMiB: args.sizeMib, format: args.format })),
      );
      return;
    case 'list':
      print(JSON.stringify(await volumes.list()));
      return;
    case 'delete':
      await volumes.get(args.id);
      await volumes.delete(args.id);
      print(JSON.stringify({ deleted: args.id }));
      return;
  }
}

/**
 * `nova-lfs volume ...` as the command runs it: resolves the exit code (0; 2 for a bad command
 * line; 1 when the adapter refuses, with its message on `error`).
 */
export async function volumeMain(
  args: readonly string[],
  out: { print(line: string): void; error(line: string): void },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let parsed: VolumeArgs | 'help';
  try {
    parsed = parseVolumeArgs(args, env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    out.error(`nova-lfs volume: ${e.message}\nRun "nova-lfs volume --help" for the options.`);
    return 2;
  }
  if (parsed === 'help') {
    out.print(volumeHelp);
    return args.length === 0 ? 2 : 0;
  }
  try {
    await runVolume(parsed, out.print);
    return 0;
  } catch (e) {
    if (!isNovaError(e)) throw e;
    out.error(`nova-lfs volume ${parsed.command}: ${e.message}`);
    return 1;
  }
}
