import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs no service and runs in seconds (`npm run test:unit`); `integration` talks to
// real services (started by infra/test.sh) and real Docker containers, so it gets generous timeouts and
// limited parallelism on the 2-core CI machine. `npm test` runs both.
export default defineConfig({
  test: {
    testTimeout: 600_000,
    hookTimeout: 900_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 30_000 } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'] } },
    ],
  },
});
