import { defineConfig } from 'vitest/config';

// Integration tests talk to real services (started by infra/test.sh) and real Docker containers,
// so they get generous timeouts and limited parallelism on the 2-core CI machine.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 900_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
  },
});
