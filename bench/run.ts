import 'reflect-metadata';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeBeforeRun } from './report.js';

/**
 * `pnpm bench <suite> [args]`: runs `bench/suites/<suite>.ts`, whose default export is
 * `(args: string[]) => Promise<boolean>` (true when every target was met).
 * `pnpm bench` alone lists the suites. Exit code 0 whether or not targets were met, unless
 * `--strict` is given (then a missed target exits 1).
 */
const here = dirname(fileURLToPath(import.meta.url));
const suites = readdirSync(join(here, 'suites'))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  .map((f) => f.slice(0, -3))
  .sort();
const [name, ...args] = process.argv.slice(2);
if (!name || !suites.includes(name)) {
  console.log(`usage: pnpm bench <suite> [args]\nsuites: ${suites.join(', ')}`);
  process.exit(name ? 2 : 0);
}
const mod = (await import(join(here, 'suites', `${name}.ts`))) as {
  default: (args: string[]) => Promise<boolean>;
};
probeBeforeRun();
const ok = await mod.default(args);
if (!ok && args.includes('--strict')) process.exit(1);
process.exit(0);
