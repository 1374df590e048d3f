import type { LocalImageService, SpawnRequest } from '@nova-lfs/core';
import type { LxcDriver } from '@nova-lfs/driver-lxc';
import { percentile } from './report.js';

/** One engine boot: `create` resolves with the instance id once it is ACTIVE; `remove` deletes it. */
export interface TracedBoot {
  readonly create: () => Promise<string>;
  readonly remove: (id: string) => Promise<void>;
}

/**
 * Where an engine boot's milliseconds go on one `LxcDriver` host: runs `rounds` boots with the
 * driver's `spawn`, its `lxc-*` tool runs and the image service's `acquire` wrapped by timers
 * (on these objects only, removed afterwards), and returns the median of each phase in ms:
 * the engine before `spawn` (admission, scheduling, claim, store writes), image lookup, each
 * `lxc-*` tool the spawn ran (by tool and first argument: an extra subprocess shows up here),
 * the driver's own work (directory, config, boot script, rootfs), and `spawn` returning ->
 * `create` resolving ACTIVE. A diagnostic: the measured rounds run without it.
 */
export async function tracePhases(
  driver: LxcDriver,
  images: LocalImageService,
  boot: TracedBoot,
  rounds: number,
): Promise<Array<readonly [phase: string, medianMs: number, perBoot: number]>> {
  const spans = new Map<string, number[]>();
  const add = (phase: string, ms: number) => {
    const xs = spans.get(phase) ?? [];
    xs.push(ms);
    spans.set(phase, xs);
  };
  let inSpawn = false;
  let perBoot = new Map<string, number>();
  const spend = (phase: string, ms: number) => perBoot.set(phase, (perBoot.get(phase) ?? 0) + ms);

  const tools = driver.tools;
  const run = tools.run;
  const spawn = driver.spawn;
  const acquire = images.acquire;
  tools.run = async function (this: typeof tools, ...args: Parameters<typeof run>) {
    const t = performance.now();
    try {
      return await run.apply(this, args);
    } finally {
      if (inSpawn) spend(`${args[0]} ${args[2][0] ?? ''}`.trim(), performance.now() - t);
    }
  };
  images.acquire = async function (this: LocalImageService, id: string) {
    const t = performance.now();
    try {
      return await acquire.call(this, id);
    } finally {
      if (inSpawn) spend('image acquire (cache lookup)', performance.now() - t);
    }
  };
  let spawnStart = 0;
  let spawnEnd = 0;
  driver.spawn = async function (this: LxcDriver, request: SpawnRequest) {
    spawnStart = performance.now();
    inSpawn = true;
    try {
      return await spawn.call(this, request);
    } finally {
      inSpawn = false;
      spawnEnd = performance.now();
    }
  };
  try {
    for (let i = 0; i < rounds; i++) {
      perBoot = new Map();
      const t0 = performance.now();
      const id = await boot.create();
      const t1 = performance.now();
      await boot.remove(id);
      add('engine before spawn (admit, schedule, claim, store)', spawnStart - t0);
      let inside = 0;
      for (const [phase, ms] of perBoot) {
        add(phase, ms);
        inside += ms;
      }
      add('driver own work (dirs, config, boot script, rootfs)', spawnEnd - spawnStart - inside);
      add('spawn returned -> ACTIVE', t1 - spawnEnd);
      add('total create -> ACTIVE', t1 - t0);
    }
  } finally {
    tools.run = run;
    images.acquire = acquire;
    driver.spawn = spawn;
  }
  return [...spans].map(([phase, xs]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return [phase, percentile(sorted, 50), xs.length / rounds] as const;
  });
}
