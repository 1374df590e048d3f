import { createToken } from '@nova-lfs/core/ports';
import type { DependencyContainer } from 'tsyringe';
import { HyperVDriver, type HyperVDriverOptions } from './hyperv-driver.js';

/** DI token of the Hyper-V driver. */
export const hyperVDriverToken = createToken<HyperVDriver>('driver-hyperv.driver');

/** Creates a Hyper-V driver and registers it in the container under {@link hyperVDriverToken}. */
export function registerHyperVDriver(
  container: DependencyContainer,
  options: HyperVDriverOptions,
): HyperVDriver {
  const driver = new HyperVDriver(options);
  container.register(hyperVDriverToken, { useValue: driver });
  return driver;
}
