import os from 'node:os';

/** One benchmark figure: a value, its unit, and optionally the target it is held to. */
export interface Figure {
  readonly value: number;
  readonly unit: string;
  /** Target, e.g. `{ op: '>=', value: 20000 }`. */
  readonly target?: { readonly op: '>=' | '<='; readonly value: number };
}

/** Whether a figure meets its target (true when it has none). */
export function meets(f: Figure): boolean {
  if (!f.target) return true;
  return f.target.op === '>=' ? f.value >= f.target.value : f.value <= f.target.value;
}

/**
 * Milliseconds a fixed CPU-bound loop takes on one core: how fast this machine is right now. On a
 * shared VM it moves by tens of percent from minute to minute, and every figure with it.
 */
export function cpuProbe(): number {
  const t0 = performance.now();
  let x = 0;
  for (let i = 0; i < 50_000_000; i++) x += i % 7;
  const ms = performance.now() - t0;
  return x < 0 ? -1 : Math.round(ms);
}

let probeBefore: number | undefined;

/** Records the CPU probe before a suite runs (printed beside the one taken after it). */
export function probeBeforeRun(): void {
  probeBefore = cpuProbe();
}

/** Machine conditions every benchmark prints. */
export function machineConditions(): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    node: process.version,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()}`,
    cpuProbeMs: `${probeBefore ?? '-'} before / ${cpuProbe()} after (fixed loop, lower is faster)`,
  };
}

/**
 * Prints a benchmark's figures readably, with its conditions, then as the last line one JSON
 * object holding the same figures. Returns true when every target is met.
 */
export function printReport(
  name: string,
  conditions: Record<string, string | number | boolean>,
  figures: Record<string, Figure>,
): boolean {
  const all = { ...machineConditions(), ...conditions };
  console.log(`\n== bench ${name} ==`);
  console.log('conditions:');
  for (const [k, v] of Object.entries(all)) console.log(`  ${k.padEnd(22)} ${v}`);
  console.log('figures:');
  let ok = true;
  for (const [k, f] of Object.entries(figures)) {
    const pass = meets(f);
    ok &&= pass;
    const target = f.target
      ? `  target ${f.target.op} ${f.target.value} ${f.unit}: ${pass ? 'MET' : 'MISSED'}`
      : '';
    console.log(`  ${k.padEnd(22)} ${formatNumber(f.value)} ${f.unit}${target}`);
  }
  const json = {
    bench: name,
    conditions: all,
    figures: Object.fromEntries(Object.entries(figures).map(([k, f]) => [k, { ...f, met: meets(f) }])),
    allTargetsMet: ok,
  };
  console.log(JSON.stringify(json));
  return ok;
}

function formatNumber(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n.toLocaleString('en-US', { maximumFractionDigits: 3 });
}

/** The p-th percentile (0-100) of a sorted array of numbers. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}
