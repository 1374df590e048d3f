import { defineConfig } from 'vitest/config';

/**
 * `pnpm test:hyperv-real`: the Hyper-V driver's conformance tests against a REAL Hyper-V host
 * named in the environment (see real-host/check-env.mjs). Outside `pnpm test`: its files end in
 * `.real-test.ts`, which the root config does not include.
 */
export default defineConfig({
  resolve: { conditions: ['@nova-lfs/source'] },
  ssr: { resolve: { conditions: ['@nova-lfs/source'] } },
  test: {
    include: ['packages/driver-hyperv/src/**/*.real-test.ts'],
    setupFiles: ['./vitest.setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 600_000,
    pool: 'forks',
  },
});
