import Docker from 'dockerode';

/**
 * Whether a Docker engine answers (DOCKER_HOST or the local socket). Outside CI a missing engine skips the
 * real-engine suites with a message; in CI (CI=true) it is an error, so a broken engine setup can never
 * turn the containment and env-build suites into silent skips.
 * @throws Error in CI when the engine does not answer
 */
export async function dockerEngineAvailable(): Promise<boolean> {
  try {
    await new Docker().ping();
    return true;
  } catch (e) {
    const msg = `no Docker engine answers (${(e as Error).message}); start one with: bash infra/docker.sh start`;
    if (process.env.CI) throw new Error(msg);
    console.warn(`skipping real-engine tests: ${msg}`);
    return false;
  }
}
