import { createToken } from '@nova-lfs/core/ports';
import type { DependencyContainer } from 'tsyringe';
import { XenDriver, type XenDriverOptions } from './xen-driver.js';

/** DI token of the Xen driver. */
export const xenDriverToken = createToken<XenDriver>('driver-xen.driver');

/** Creates a Xen driver and registers it in the container under {@link xenDriverToken}. */
export function registerXenDriver(container: DependencyContainer, options: XenDriverOptions = {}): XenDriver {
  const driver = new XenDriver(options);
  container.register(xenDriverToken, { useValue: driver });
  return driver;
}
