import Dockerode from 'dockerode';

/** Whether dockerd answers on the socket; used by tests to skip (or, with CI=true, fail) clearly. */
export async function dockerAvailable(socketPath = '/var/run/docker.sock'): Promise<boolean> {
  try {
    await new Dockerode({ socketPath }).ping();
    return true;
  } catch {
    return false;
  }
}

/** The command that starts dockerd here (printed when tests skip). */
export const startDockerCommand = 'bash scripts/services/start-docker.sh';
