import { describe, expect, it } from 'vitest';
import { downtimeFromCompletedStats, progressFromJobStats } from './migration-progress.js';

describe('progressFromJobStats', () => {
  it("maps libvirt's job statistics of a running migration to the port's progress", () => {
    const p = progressFromJobStats(
      {
        type: 2,
        time_elapsed: 1234,
        data_total: 268_435_456n,
        data_processed: 100,
        data_remaining: 200,
        memory_dirty_rate: 990,
        memory_page_size: 4096,
        downtime: 42,
        operation: 'outgoing migration',
      },
      'precopy',
      9_999,
    );
    expect(p).toEqual({
      phase: 'precopy',
      elapsedMs: 1234,
      dataTotalBytes: 268_435_456,
      dataProcessedBytes: 100,
      dataRemainingBytes: 200,
      dirtyRateBytesPerSecond: 990 * 4096,
      downtimeMs: 42,
    });
  });

  it('leaves out what libvirt did not report and falls back to the measured elapsed time', () => {
    expect(progressFromJobStats({ memory_dirty_rate: 3 }, 'postcopy', 77)).toEqual({
      phase: 'postcopy',
      elapsedMs: 77,
      dirtyRateBytesPerSecond: 3 * 4096,
    });
  });

  it("reads the completed job's downtime", () => {
    expect(downtimeFromCompletedStats({ downtime: 61n })).toBe(61);
    expect(downtimeFromCompletedStats({})).toBeUndefined();
  });
});
