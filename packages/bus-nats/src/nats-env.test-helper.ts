import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { FieldIssue } from '@nova-lfs/core';
import type { BusLogger } from './logger.js';
import { defaultNatsUrl, natsAvailable, startNatsCommand } from './testing/index.js';

function serverBinaryVersion(): string | undefined {
  try {
    return execFileSync('nats-server', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

/** `nats-server --version`, or undefined when the binary is missing. */
export const natsServerVersion = serverBinaryVersion();

/** Whether the shared nats-server answers, decided once per test file. With CI=true a miss is an error. */
export const available = await natsAvailable(defaultNatsUrl);
if (!available) {
  const reason = `nats-server does not answer at ${defaultNatsUrl}; start it with: ${startNatsCommand}`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping NATS bus tests: ${reason}`);
}

/** Whether tests can start their own `nats-server` child. With CI=true a missing binary is an error. */
export const binaryAvailable = natsServerVersion !== undefined;
if (!binaryAvailable) {
  const reason = 'the nats-server binary is not on PATH (Debian: apt-get install nats-server)';
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping NATS tests that start their own server: ${reason}`);
}

/** A host id no other test (or earlier run on the shared server) uses. */
export function uniqueHostId(prefix = 'h'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** One record of a {@link RecordingLogger}. */
export interface LogRecord {
  readonly message: string;
  readonly fields: Record<string, unknown> & { code?: string; details?: { issues?: FieldIssue[] } };
}

/** A logger that keeps what it is told, for assertions. */
export class RecordingLogger implements BusLogger {
  readonly records: LogRecord[] = [];
  warn(message: string, fields: Record<string, unknown>): void {
    this.records.push({ message, fields });
  }
  codes(): (string | undefined)[] {
    return this.records.map((r) => r.fields.code);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every 20 ms until it is true or `timeoutMs` passes (then throws). */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
