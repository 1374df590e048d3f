import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './agent-env.test-helper.js';
import { OperationJournal } from './operation-journal.js';

describe('OperationJournal', () => {
  it('remembers successes across instances on one file, by method and operation id', () => {
    const path = join(tempDir(), 'state', 'operations.jsonl');
    const first = new OperationJournal(path);
    first.record('driver.spawn', 'op-1', { ok: 1 });
    expect(first.find('driver.spawn', 'op-1')).toEqual({ result: { ok: 1 } });
    expect(first.find('driver.destroy', 'op-1')).toBeUndefined();
    const reopened = new OperationJournal(path);
    expect(reopened.find('driver.spawn', 'op-1')).toEqual({ result: { ok: 1 } });
    expect(reopened.size).toBe(1);
  });

  it('skips a line cut by a kill and drops entries past their retention when it compacts', () => {
    let now = 1_000_000;
    const path = join(tempDir(), 'operations.jsonl');
    const j = new OperationJournal(path, { now: () => now, retentionMs: 1000 });
    j.record('driver.spawn', 'old', {});
    now += 600;
    j.record('driver.spawn', 'new', {});
    appendFileSync(path, '{"key":"driver.spawn\\u0000cut","at":');
    now += 600;
    const reopened = new OperationJournal(path, { now: () => now, retentionMs: 1000 });
    expect(reopened.find('driver.spawn', 'old')).toBeUndefined();
    expect(reopened.find('driver.spawn', 'new')).toEqual({ result: {} });
    expect(reopened.size).toBe(1);
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('keeps at most maxEntries, the newest', () => {
    const j = new OperationJournal(undefined, { maxEntries: 2 });
    for (const op of ['a', 'b', 'c']) j.record('m', op, {});
    expect(j.find('m', 'a')).toBeUndefined();
    expect(j.find('m', 'c')).toBeDefined();
    expect(j.size).toBe(2);
  });
});
