import { createToken } from '@nova-lfs/core/ports';
import type { DependencyContainer } from 'tsyringe';
import { DockerDriver, type DockerDriverOptions } from './docker-driver.js';

/** DI token of the Docker driver. */
export const dockerDriverToken = createToken<DockerDriver>('driver-docker.driver');

/** Creates a Docker driver and registers it in the container under {@link dockerDriverToken}. */
export function registerDockerDriver(
  container: DependencyContainer,
  options: DockerDriverOptions = {},
): DockerDriver {
  const driver = new DockerDriver(options);
  container.register(dockerDriverToken, { useValue: driver });
  return driver;
}
