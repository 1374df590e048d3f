import { defineConfig } from 'vitest/config';

/**
 * One vitest run over every package. Workspace packages resolve to their TypeScript sources
 * through the `@nova-lfs/source` export condition, so tests never need a prior build.
 */
export default defineConfig({
  resolve: { conditions: ['@nova-lfs/source'] },
  ssr: { resolve: { conditions: ['@nova-lfs/source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts'],
    setupFiles: ['./vitest.setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', './vitest.ci-reporter.ts'],
  },
});
