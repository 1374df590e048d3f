import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createFakeCloud } from '../testing/engine-fixture.js';
import {
  checkMoveInvariants,
  checkMovesCleanedUp,
  moveSteps,
  runMoveStep,
} from '../testing/move-properties.js';

describe('resize and cold migration properties (fast-check)', () => {
  it('claims and quota are right on both hosts at every step of any resize/migrate/confirm/revert/delete sequence', async () => {
    const succeeded: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(moveSteps(fc), async (steps) => {
        const cloud = await createFakeCloud({
          hosts: 3,
          quota: { instances: 8, cores: 40, ramMb: 1_000_000 },
          core: { engine: { allowResizeToSameHost: true } },
        });
        for (const step of steps) {
          await runMoveStep(cloud, step, succeeded);
          await checkMoveInvariants(cloud);
        }
        await checkMovesCleanedUp(cloud);
        await cloud.compute.close();
      }),
      {
        numRuns: 120,
        ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}),
      },
    );
    // the sequences did move instances (not only refusals)
    for (const op of ['resize', 'migrate', 'confirm', 'revert', 'delete']) {
      expect(succeeded[op] ?? 0, `${op} succeeded`).toBeGreaterThan(10);
    }
  }, 180_000);
});
