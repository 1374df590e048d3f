import type { Reporter, TestModule } from 'vitest/node';

/**
 * With `CI=true` a skipped test is a failure: a suite that skips because its engine (dockerd,
 * libvirtd, PostgreSQL) is missing must not pass silently. Lists every skipped test and sets a
 * non-zero exit code.
 */
export default class FailOnSkipReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    if (process.env.CI !== 'true') return;
    const skipped: string[] = [];
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        if (t.result().state === 'skipped') skipped.push(`${m.moduleId}: ${t.fullName}`);
      }
    }
    if (skipped.length === 0) return;
    console.error(
      `\nCI=true: ${skipped.length} skipped test(s) count as failures:\n  ${skipped.join('\n  ')}`,
    );
    process.exitCode = 1;
  }
}
