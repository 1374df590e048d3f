import { randomUUID } from 'node:crypto';
import {
  type Claim,
  type Flavor,
  type Host,
  hostSchema,
  type Image,
  type PlacementRequest,
} from '@nova-lfs/core';
import { createScheduler, type PluginScheduler, spreadProfile } from '@nova-lfs/scheduler';
import { percentile, printReport } from '../report.js';

/**
 * `pnpm bench scheduler [--placements N] [--hosts N]`
 * 1. steady-state placements at 10,000 hosts with zones, traits, anti-affinity groups (sampling);
 * 2. exhaustive scoring at 10,000 hosts;
 * 3. packing quality of bin-pack vs offline first-fit-decreasing;
 * 4. a naive baseline (filter and score every host, no index) and the ratio.
 */
export default async function scheduler(args: string[]): Promise<boolean> {
  const opt = (name: string, dflt: number): number => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const placements = opt('placements', 1_000_000);
  const hostCount = opt('hosts', 10_000);
  const rng = mulberry(42);

  // ---- 1. steady state with sampling --------------------------------------------------------
  const s = createScheduler({ random: rng, maxInFlightBuilds: 1_000_000, maxInstancesPerHost: 1_000_000 });
  const hosts = makeHosts(hostCount, rng);
  for (const h of hosts) s.upsertHost(h);
  const live: Claim[] = [];
  const groups = Array.from({ length: 1000 }, () => [] as Array<{ claim: Claim; hostId: string }>);
  const target = Math.floor(hostCount * 6); // ~50% of vCPU capacity with the flavor mix
  for (let i = 0; i < target; i++) live.push((await s.select(makeRequest(rng, false)))[0]!.claim);
  const lat = new Float64Array(placements);
  let failures = 0;
  let head = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < placements; i++) {
    const groupIdx = rng() < 0.05 ? Math.floor(rng() * groups.length) : -1;
    const group = groupIdx >= 0 ? groups[groupIdx]! : undefined;
    const req = makeRequest(
      rng,
      true,
      group
        ? { id: `g${groupIdx}`, policy: 'anti-affinity', memberHostIds: group.map((m) => m.hostId) }
        : undefined,
    );
    const a = process.hrtime.bigint();
    try {
      const [sel] = await s.select(req);
      lat[i] = Number(process.hrtime.bigint() - a) / 1e6;
      s.buildFinished(sel!.claim);
      if (group) {
        group.push({ claim: sel!.claim, hostId: sel!.hostId });
        if (group.length > 5) group.shift();
      }
      live.push(sel!.claim);
    } catch {
      lat[i] = Number(process.hrtime.bigint() - a) / 1e6;
      failures++;
    }
    // steady state: release the oldest claim for each new one
    if (live.length - head > target) {
      await s.release(live[head]!);
      head++;
      if (head > 100_000) {
        live.splice(0, head);
        head = 0;
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const sorted = lat.sort();

  // ---- 2. exhaustive scoring -----------------------------------------------------------------
  const exhaustiveN = Math.min(5_000, placements);
  const ex = createScheduler({
    random: rng,
    profile: { ...spreadProfile, sampling: { mode: 'exhaustive' } },
    maxInFlightBuilds: 1_000_000,
    maxInstancesPerHost: 1_000_000,
  });
  for (const h of hosts) ex.upsertHost(h);
  const exClaims: Claim[] = [];
  const e0 = process.hrtime.bigint();
  for (let i = 0; i < exhaustiveN; i++) {
    const [sel] = await ex.select(makeRequest(rng, true));
    exClaims.push(sel!.claim);
    if (exClaims.length > 2000) await ex.release(exClaims.shift()!);
  }
  const exSeconds = Number(process.hrtime.bigint() - e0) / 1e9;

  // ---- 3. packing quality --------------------------------------------------------------------
  const packHosts = 2_000;
  const packRequests = 8_000;
  const sizes = Array.from({ length: packRequests }, () => flavorMix[Math.floor(rng() * flavorMix.length)]!);
  const bp = createScheduler({
    profile: 'binpack',
    random: rng,
    maxInFlightBuilds: 1_000_000,
    maxInstancesPerHost: 1_000_000,
  });
  const uniform = Array.from({ length: packHosts }, (_, i) =>
    makeHost(`p${i}`, 32, 131_072, 'az1', 'cell1', [], 1),
  );
  for (const h of uniform) bp.upsertHost(h);
  const bpProfile = createScheduler({
    profile: {
      ...spreadProfile,
      name: 'binpack-exhaustive',
      scorers: [
        { name: 'RamScorer', weight: -1 },
        { name: 'VcpuScorer', weight: -1 },
      ],
      sampling: { mode: 'exhaustive' },
    },
    random: rng,
    maxInFlightBuilds: 1_000_000,
    maxInstancesPerHost: 1_000_000,
  });
  for (const h of uniform) bpProfile.upsertHost(h);
  for (const f of sizes) {
    await bp.select(requestFor(f));
    await bpProfile.select(requestFor(f));
  }
  const usedHosts = (sch: PluginScheduler) =>
    uniform.filter((h) => (sch.hostState(h.id)!.used.VCPU ?? 0) > 0).length;
  const ffd = firstFitDecreasing(sizes, 32, 131_072);
  const sampledUsed = usedHosts(bp);
  const exhaustiveUsed = usedHosts(bpProfile);

  // ---- 4. naive baseline ---------------------------------------------------------------------
  const naiveN = Math.min(2_000, placements);
  const naive = new NaiveScheduler(hosts);
  const n0 = process.hrtime.bigint();
  for (let i = 0; i < naiveN; i++) naive.place(makeRequest(rng, true));
  const naiveSeconds = Number(process.hrtime.bigint() - n0) / 1e9;
  const naiveRate = naiveN / naiveSeconds;
  const rate = placements / seconds;

  return printReport(
    'scheduler',
    {
      hosts: hostCount,
      cells: 2,
      zones: 4,
      traits: '10% CUSTOM_SSD, 5% CUSTOM_GPU',
      flavorMix: flavorMix.map((f) => `${f.vcpus}c/${f.ramMb}M`).join(' '),
      placements,
      steadyState: `~${target} live claims; each placement releases the oldest`,
      requestsWithZone: '25%',
      requestsWithTrait: '5% require CUSTOM_SSD',
      antiAffinityGroups: '1000 groups, 5% of requests join one (up to 5 live members)',
      sampling: 'log2 (min 8 feasible)',
      claimPersistence: 'none (in-memory scheduler only)',
      exhaustivePlacements: exhaustiveN,
      packing: `${packRequests} requests on ${packHosts} hosts of 32 vCPU / 128 GiB, arrival order`,
      naivePlacements: naiveN,
    },
    {
      placementsPerSecond: {
        value: Math.round(rate),
        unit: 'placements/s',
        target: { op: '>=', value: 50_000 },
      },
      p50DecisionLatency: { value: round(percentile(sorted, 50)), unit: 'ms' },
      p99DecisionLatency: {
        value: round(percentile(sorted, 99)),
        unit: 'ms',
        target: { op: '<=', value: 1 },
      },
      noValidHost: { value: failures, unit: 'placements' },
      exhaustivePlacementsPerSecond: {
        value: Math.round(exhaustiveN / exSeconds),
        unit: 'placements/s',
        target: { op: '>=', value: 2_000 },
      },
      packingHostsFFD: { value: ffd, unit: 'hosts' },
      packingHostsBinpackSampled: { value: sampledUsed, unit: 'hosts' },
      packingHostsBinpackExhaustive: { value: exhaustiveUsed, unit: 'hosts' },
      packingOverheadVsFFD: {
        value: round((exhaustiveUsed / ffd - 1) * 100),
        unit: '%',
        target: { op: '<=', value: 5 },
      },
      naivePlacementsPerSecond: { value: Math.round(naiveRate), unit: 'placements/s' },
      speedupOverNaive: { value: round(rate / naiveRate), unit: 'x' },
    },
  );
}

const flavorMix: Flavor[] = [
  [1, 2048],
  [1, 2048],
  [2, 4096],
  [2, 4096],
  [4, 8192],
  [8, 16_384],
  [16, 32_768],
].map(([vcpus, ramMb]) => ({
  id: `f${vcpus}`,
  name: `f${vcpus}`,
  vcpus: vcpus!,
  ramMb: ramMb!,
  diskGb: 20,
  resources: {},
  extraSpecs: {},
}));
const ssdFlavors = flavorMix.map((f) => ({
  ...f,
  id: `${f.id}-ssd`,
  extraSpecs: { 'trait:CUSTOM_SSD': 'required' },
}));
const image: Image = {
  id: 'img',
  name: 'img',
  diskFormat: 'qcow2',
  containerFormat: 'bare',
  sha256: '0'.repeat(64),
  sizeBytes: 1,
  properties: {},
};
const zones = ['az1', 'az2', 'az3', 'az4'];

function makeHost(
  id: string,
  vcpus: number,
  ramMb: number,
  zone: string,
  cell: string,
  traits: string[],
  ratio: number,
): Host {
  return hostSchema.parse({
    id,
    name: id,
    hypervisorType: 'qemu',
    availabilityZone: zone,
    cell,
    traits,
    inventory: {
      VCPU: { total: vcpus, reserved: 0, allocationRatio: ratio },
      MEMORY_MB: { total: ramMb, reserved: 0, allocationRatio: 1 },
      DISK_GB: { total: 4000, reserved: 0, allocationRatio: 1 },
    },
  });
}

function makeHosts(n: number, rng: () => number): Host[] {
  const shapes = [
    [32, 131_072],
    [64, 262_144],
    [128, 524_288],
  ] as const;
  return Array.from({ length: n }, (_, i) => {
    const [vcpus, ram] = shapes[Math.floor(rng() * shapes.length)]!;
    const traits = rng() < 0.1 ? ['CUSTOM_SSD'] : rng() < 0.05 ? ['CUSTOM_GPU'] : [];
    const zone = zones[i % zones.length]!;
    return makeHost(`h${i}`, vcpus, ram, zone, i % 2 === 0 ? 'cell1' : 'cell2', traits, 4);
  });
}

function requestFor(f: Flavor, extra: Partial<PlacementRequest> = {}): PlacementRequest {
  return {
    requestId: 'r',
    projectId: 'p',
    instanceIds: [randomUUID()],
    flavor: f,
    image,
    hints: {},
    ...extra,
  };
}

function makeRequest(rng: () => number, mixed: boolean, group?: PlacementRequest['group']): PlacementRequest {
  const ssd = mixed && rng() < 0.05;
  const f = (ssd ? ssdFlavors : flavorMix)[Math.floor(rng() * flavorMix.length)]!;
  const zone = mixed && rng() < 0.25 ? zones[Math.floor(rng() * zones.length)] : undefined;
  return requestFor(f, { ...(zone ? { availabilityZone: zone } : {}), ...(group ? { group } : {}) });
}

function firstFitDecreasing(sizes: readonly Flavor[], vcpus: number, ramMb: number): number {
  const sorted = [...sizes].sort((a, b) => b.ramMb - a.ramMb || b.vcpus - a.vcpus);
  const bins: Array<{ c: number; r: number }> = [];
  for (const f of sorted) {
    const bin = bins.find((b) => b.c + f.vcpus <= vcpus && b.r + f.ramMb <= ramMb);
    if (bin) {
      bin.c += f.vcpus;
      bin.r += f.ramMb;
    } else bins.push({ c: f.vcpus, r: f.ramMb });
  }
  return bins.length;
}

/** Filter and score every host on every request, no index, no sampling (the baseline). */
class NaiveScheduler {
  private readonly used = new Map<string, { c: number; r: number }>();
  constructor(private readonly hosts: readonly Host[]) {
    for (const h of hosts) this.used.set(h.id, { c: 0, r: 0 });
  }
  place(req: PlacementRequest): string | undefined {
    let best: Host | undefined;
    let bestScore = Number.NEGATIVE_INFINITY;
    const feasible: Host[] = [];
    for (const h of this.hosts) {
      if (!h.enabled || !h.up) continue;
      if (req.availabilityZone && h.availabilityZone !== req.availabilityZone) continue;
      const u = this.used.get(h.id)!;
      const capC = (h.inventory.VCPU!.total - h.inventory.VCPU!.reserved) * h.inventory.VCPU!.allocationRatio;
      const capR = h.inventory.MEMORY_MB!.total - h.inventory.MEMORY_MB!.reserved;
      if (u.c + req.flavor.vcpus > capC || u.r + req.flavor.ramMb > capR) continue;
      let traitsOk = true;
      for (const [k, v] of Object.entries(req.flavor.extraSpecs)) {
        if (k.startsWith('trait:') && v === 'required' && !h.traits.includes(k.slice(6))) traitsOk = false;
      }
      if (!traitsOk) continue;
      if (req.group?.memberHostIds.includes(h.id)) continue;
      feasible.push(h);
    }
    let minR = Number.POSITIVE_INFINITY;
    let maxR = Number.NEGATIVE_INFINITY;
    const free = feasible.map((h) => h.inventory.MEMORY_MB!.total - this.used.get(h.id)!.r);
    for (const f of free) {
      minR = Math.min(minR, f);
      maxR = Math.max(maxR, f);
    }
    feasible.forEach((h, i) => {
      const score = maxR > minR ? (free[i]! - minR) / (maxR - minR) : 0;
      if (score > bestScore) {
        bestScore = score;
        best = h;
      }
    });
    if (!best) return undefined;
    const u = this.used.get(best.id)!;
    u.c += req.flavor.vcpus;
    u.r += req.flavor.ramMb;
    return best.id;
  }
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
