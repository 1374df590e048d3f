import { z } from 'zod';
import { HyperVCommandError, HyperVCommandTooLongError, type PowerShellErrorRecord } from './errors.js';
import { type ScriptName, scriptText } from './scripts.js';

/** The fixed program and switches every call runs; only the encoded command follows. */
export const POWERSHELL_PREFIX = 'powershell -NoProfile -NonInteractive -EncodedCommand ';

/**
 * Longest command line sent by default. Windows OpenSSH hands the command to its default shell;
 * `cmd.exe` (the default) takes at most 8,191 characters.
 */
export const DEFAULT_MAX_COMMAND_LENGTH = 8_000;

/** JSON values a script takes as its arguments. */
export type ScriptArgs = Readonly<Record<string, string | number | boolean | null>>;

/**
 * The command line of one script: the fixed `powershell ... -EncodedCommand` prefix and the base64
 * of the script's fixed UTF-16LE text. It holds only `[A-Za-z0-9+/=]`, spaces and the fixed
 * switches, so no shell on the host (cmd.exe or PowerShell as OpenSSH's default shell) reads
 * anything into it, and it never depends on a value: the same script always sends the same line.
 * @throws HyperVCommandTooLongError when the line passes `maxLength`.
 */
export function buildCommand(script: ScriptName, maxLength = DEFAULT_MAX_COMMAND_LENGTH): string {
  const command = POWERSHELL_PREFIX + Buffer.from(scriptText(script), 'utf16le').toString('base64');
  if (command.length > maxLength) throw new HyperVCommandTooLongError(script, command.length, maxLength);
  return command;
}

/**
 * The stdin of one script call: the base64 of the UTF-8 JSON of its arguments and a newline. The
 * script decodes it with `ConvertFrom-Json`; nothing in it is ever parsed as PowerShell.
 */
export function encodeArgs(args: ScriptArgs): string {
  return `${Buffer.from(JSON.stringify(args), 'utf8').toString('base64')}\n`;
}

/** Reverses {@link buildCommand} (for tests): the script text, or undefined for another line. */
export function decodeCommand(command: string): string | undefined {
  if (!command.startsWith(POWERSHELL_PREFIX)) return undefined;
  const encoded = command.slice(POWERSHELL_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return undefined;
  return Buffer.from(encoded, 'base64').toString('utf16le');
}

const RESULT_PREFIX = 'NOVALFS:';
const ERROR_PREFIX = 'NOVALFS-ERROR:';

const errorRecordSchema = z.object({
  FullyQualifiedErrorId: z.string(),
  CategoryInfo: z.object({
    Category: z.string(),
    Reason: z.string().default(''),
    TargetName: z.string().default(''),
    Activity: z.string().default(''),
  }),
  Exception: z.object({ TypeName: z.string(), Message: z.string() }),
});

/** What one script run left: exit code, stdout and stderr. */
export interface ScriptRun {
  readonly exitCode: number | undefined;
  readonly signal?: string;
  readonly stdout: string;
  readonly stderr: string;
}

function lastTail(text: string, max = 2_000): string {
  return text.length > max ? text.slice(-max) : text;
}

/** The `ErrorRecord` a failed script wrote on stderr, when it wrote one this driver can read. */
export function parseErrorRecord(stderr: string): PowerShellErrorRecord | undefined {
  const line = stderr
    .split(/\r?\n/)
    .reverse()
    .find((l) => l.startsWith(ERROR_PREFIX));
  if (!line) return undefined;
  try {
    const r = errorRecordSchema.safeParse(JSON.parse(line.slice(ERROR_PREFIX.length)));
    if (!r.success) return undefined;
    const { FullyQualifiedErrorId, CategoryInfo, Exception } = r.data;
    return {
      fullyQualifiedErrorId: FullyQualifiedErrorId,
      category: CategoryInfo.Category,
      reason: CategoryInfo.Reason,
      targetName: CategoryInfo.TargetName,
      activity: CategoryInfo.Activity,
      exceptionType: Exception.TypeName,
      message: Exception.Message,
    };
  } catch {
    return undefined;
  }
}

/**
 * Reads a script's result: the last `NOVALFS:` line of stdout, parsed as JSON and validated with
 * `schema`. A non-zero exit, a missing or malformed result line, or a result that fails the schema
 * is a {@link HyperVCommandError} carrying the `ErrorRecord` when there is one.
 */
export function parseResult<T>(script: ScriptName, run: ScriptRun, schema: z.ZodType<T>): T {
  const fail = (problem: string, record?: PowerShellErrorRecord): never => {
    throw new HyperVCommandError({
      script,
      ...(run.exitCode === undefined ? {} : { exitCode: run.exitCode }),
      ...(run.signal ? { signal: run.signal } : {}),
      problem,
      stderr: lastTail(run.stderr),
      ...(record ? { record } : {}),
    });
  };
  if (run.exitCode !== 0) {
    const record = parseErrorRecord(run.stderr);
    return fail(record ? 'powershell error' : 'failed without an error record', record);
  }
  const line = run.stdout
    .split(/\r?\n/)
    .reverse()
    .find((l) => l.startsWith(RESULT_PREFIX));
  if (!line) return fail('no result line on stdout');
  let json: unknown;
  try {
    json = JSON.parse(line.slice(RESULT_PREFIX.length));
  } catch {
    return fail('result line is not JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(
      `result does not match its schema at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    );
  }
  return parsed.data;
}
