import { createToken } from '@nova-lfs/core/ports';
import type { DependencyContainer } from 'tsyringe';
import { KvmDriver, type KvmDriverOptions } from './kvm-driver.js';

/** DI token of the KVM driver. */
export const kvmDriverToken = createToken<KvmDriver>('driver-kvm.driver');

/** Creates a KVM driver and registers it in the container under {@link kvmDriverToken}. */
export function registerKvmDriver(container: DependencyContainer, options: KvmDriverOptions = {}): KvmDriver {
  const driver = new KvmDriver(options);
  container.register(kvmDriverToken, { useValue: driver });
  return driver;
}
