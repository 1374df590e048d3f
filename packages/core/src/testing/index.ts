/**
 * `@nova-lfs/core/testing`: the FAKE driver, a first-fit scheduler for tests, and the driver
 * conformance suite every driver package runs against its real engine.
 * @packageDocumentation
 */

export type { EngineDeps } from '../engine/engine-context.js';
export {
  type ConformanceOptions,
  type ConformanceSubject,
  describeDriverConformance,
} from './driver-conformance.js';
export { createFakeCloud, type FakeCloud, type FakeCloudOptions } from './engine-fixture.js';
export {
  FakeDriver,
  type FakeDriverOptions,
  type FakeFailure,
  type FakeGuest,
  type FakeOperation,
} from './fake-driver.js';
export { FirstFitReason, FirstFitScheduler } from './first-fit-scheduler.js';
export type { FakeHold } from './hold.js';
export { internalsOf } from './internals.js';
export {
  checkMoveInvariants,
  checkMovesCleanedUp,
  type MoveStep,
  moveSteps,
  runMoveStep,
} from './move-properties.js';
export { buildTestInstance, tinyTestFlavor } from './test-instance.js';
