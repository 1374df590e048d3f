import { createToken } from '@nova-lfs/core/ports';
import type { DependencyContainer } from 'tsyringe';
import { LxcDriver, type LxcDriverOptions } from './lxc-driver.js';

/** DI token of the LXC driver. */
export const lxcDriverToken = createToken<LxcDriver>('driver-lxc.driver');

/** Creates an LXC driver and registers it in the container under {@link lxcDriverToken}. */
export function registerLxcDriver(container: DependencyContainer, options: LxcDriverOptions = {}): LxcDriver {
  const driver = new LxcDriver(options);
  container.register(lxcDriverToken, { useValue: driver });
  return driver;
}
