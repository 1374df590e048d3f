import { describe, expect, it } from 'vitest';
import { ErrorCode, isErrorCode, isNovaError, NovaError } from './errors.js';

describe('one error code union across the packages', () => {
  it('gives every code one name and one meaning (no value twice), all NLFS_ upper case', () => {
    const values = Object.values(ErrorCode);
    expect(new Set(values).size).toBe(values.length);
    for (const v of values) expect(v).toMatch(/^NLFS_[A-Z0-9_]+$/);
    // every package's codes are in the one union
    for (const v of [
      'NLFS_DB_CONFLICT',
      'NLFS_SCHED_UNKNOWN_PLUGIN',
      'NLFS_LXC_COMMAND',
      'NLFS_BUS_CLOSED',
      'NLFS_POWER_SYNC',
    ])
      expect(values).toContain(v);
  });

  it('recognises its own codes and nothing else (a code from another process is checked)', () => {
    expect(isErrorCode('NLFS_NO_VALID_HOST')).toBe(true);
    expect(isErrorCode('NLFS_SOMETHING_NEW')).toBe(false);
    expect(isErrorCode(42)).toBe(false);
    expect(isErrorCode(undefined)).toBe(false);
  });

  it('lets isNovaError decide by code across copies of the package', () => {
    const foreign = Object.assign(new Error('x'), { code: ErrorCode.DbTimeout, details: {} });
    expect(isNovaError(foreign, ErrorCode.DbTimeout)).toBe(true);
    expect(isNovaError(new NovaError(ErrorCode.LxcCommand, 'x', {}), ErrorCode.LxcCommand)).toBe(true);
    expect(isNovaError(new NovaError(ErrorCode.LxcCommand, 'x', {}), ErrorCode.DbTimeout)).toBe(false);
  });
});
