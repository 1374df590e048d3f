import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Options of {@link OperationJournal}. */
export interface OperationJournalOptions {
  /** How long a finished operation is remembered, in ms (default 1 hour). */
  readonly retentionMs?: number;
  /** Entries kept at most (the newest; default 100,000). */
  readonly maxEntries?: number;
  /** Clock, epoch ms (default `Date.now`). */
  readonly now?: () => number;
}

interface Entry {
  readonly key: string;
  readonly at: number;
  readonly result: unknown;
}

/**
 * The agent's durable memory of finished mutating calls, by method and operation id: a JSON-lines
 * file appended after each success (synchronously, before the reply is sent), compacted at start.
 * It complements bus-nats's in-memory idempotency, which a restart forgets: a call retried with its
 * operation id after the agent was killed and restarted gets the first run's result and does not
 * run again. Failures are not recorded (a retry runs the call again). Without a path it keeps
 * entries in memory only.
 */
export class OperationJournal {
  private readonly entries = new Map<string, Entry>();
  private readonly retentionMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(
    private readonly path: string | undefined,
    options: OperationJournalOptions = {},
  ) {
    this.retentionMs = options.retentionMs ?? 3_600_000;
    this.maxEntries = options.maxEntries ?? 100_000;
    this.now = options.now ?? Date.now;
    if (path) this.load(path);
  }

  /** Number of operations remembered. */
  get size(): number {
    return this.entries.size;
  }

  /** The result of a finished `method` call with `operationId`, or undefined. */
  find(method: string, operationId: string): { result: unknown } | undefined {
    const e = this.entries.get(keyOf(method, operationId));
    if (!e || this.now() - e.at > this.retentionMs) return undefined;
    return { result: e.result };
  }

  /** Remembers a success (written to the file before this returns). */
  record(method: string, operationId: string, result: unknown): void {
    const entry: Entry = { key: keyOf(method, operationId), at: this.now(), result };
    this.entries.set(entry.key, entry);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    if (this.path) appendFileSync(this.path, `${JSON.stringify(entry)}\n`);
  }

  private load(path: string): void {
    mkdirSync(dirname(path), { recursive: true });
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return;
    }
    const cutoff = this.now() - this.retentionMs;
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as Entry;
        // a line cut by a kill is skipped; so are entries of another shape
        if (typeof e.key === 'string' && typeof e.at === 'number' && e.at >= cutoff)
          this.entries.set(e.key, e);
      } catch {}
    }
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, [...this.entries.values()].map((e) => `${JSON.stringify(e)}\n`).join(''));
    renameSync(tmp, path);
  }
}

function keyOf(method: string, operationId: string): string {
  return `${method}\u0000${operationId}`;
}
