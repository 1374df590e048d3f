import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCompute, LocalImageService } from '@nova-lfs/core';
import { DockerDriver, imageReference } from '@nova-lfs/driver-docker';
import { makeBusyboxRootfs } from '@nova-lfs/driver-docker/testing';
import { schedulerFactory } from '@nova-lfs/scheduler';
import Dockerode from 'dockerode';
import { percentile, printReport } from '../report.js';

/**
 * `pnpm bench docker [--rounds N] [--concurrent N]`: instance boot through the engine (create ->
 * active) against raw dockerode create+start of the same image and command, alternating, in the
 * same run; then N concurrent boots on one host. Needs dockerd (scripts/services/start-docker.sh).
 */
export default async function dockerBench(args: string[]): Promise<boolean> {
  const opt = (name: string, dflt: number): number => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const rounds = opt('rounds', 30);
  const concurrent = opt('concurrent', 50);
  const docker = new Dockerode();
  const version = await docker.version();
  const dir = mkdtempSync(join(tmpdir(), 'nlfs-bench-docker-'));
  await makeBusyboxRootfs(join(dir, 'busybox.tar'));
  const images = new LocalImageService(join(dir, 'images'));
  const image = await images.import(
    { id: 'busybox', name: 'busybox', diskFormat: 'tar' },
    { kind: 'file', path: join(dir, 'busybox.tar') },
  );
  const driver = new DockerDriver({ hostId: 'bench', stopTimeoutSeconds: 1 });
  const compute = await createCompute({
    storage: 'memory',
    images,
    flavors: [{ id: 'c1', vcpus: 1, ramMb: 64 }],
    quota: { defaults: { instances: -1, cores: -1, ramMb: -1 } },
    // one host takes all the concurrent boots: overcommit vCPU and allow that many builds in flight
    scheduler: schedulerFactory({ maxInFlightBuilds: concurrent, maxInstancesPerHost: concurrent }),
    hosts: [{ id: 'bench', driver, allocationRatios: { VCPU: 64 } }],
  });
  const cmd = [
    'sh',
    '-c',
    'echo "nova-lfs: instance $NOVA_LFS_INSTANCE booted"; trap "exit 0" TERM; while true; do sleep 1; done',
  ];
  const req = { name: 'bench', projectId: 'bench', userId: 'bench', flavorId: 'c1', imageId: 'busybox' };

  // warm up both paths (image import happens here, once)
  for (let i = 0; i < 3; i++) {
    const [vm] = await compute.create(req);
    await compute.delete(vm!.id);
  }
  const ref = imageReference(image.sha256).ref;
  const rawBoot = async (n: number): Promise<Dockerode.Container> => {
    const c = await docker.createContainer({
      name: `nova-bench-raw-${process.pid}-${n}`,
      Image: ref,
      Cmd: cmd,
      Labels: { 'nova-lfs.bench': 'raw' },
      HostConfig: { NanoCpus: 1e9, Memory: 64 * 2 ** 20, PidsLimit: 1024, NetworkMode: 'none' },
    });
    await c.start();
    return c;
  };
  await (await rawBoot(-1)).remove({ force: true });

  const engineMs: number[] = [];
  const rawMs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let t = performance.now();
    const [vm] = await compute.create(req);
    engineMs.push(performance.now() - t);
    if (vm!.vmState !== 'active') throw new Error(`engine boot failed: ${vm!.fault?.message}`);
    t = performance.now();
    const c = await rawBoot(r);
    rawMs.push(performance.now() - t);
    await compute.delete(vm!.id);
    await c.remove({ force: true });
  }
  engineMs.sort((a, b) => a - b);
  rawMs.sort((a, b) => a - b);
  const ratio = percentile(engineMs, 50) / percentile(rawMs, 50);

  const t0 = performance.now();
  const many = await compute.create({ ...req, count: concurrent });
  const concurrentMs = performance.now() - t0;
  const active = many.filter((v) => v.vmState === 'active').length;
  const fault = many.find((v) => v.fault)?.fault;
  if (fault) console.log(`first fault of the concurrent boots: ${fault.code} ${fault.message}`);
  const running = (await docker.listContainers({ filters: { label: ['nova-lfs.host=bench'] } })).length;
  await Promise.all(many.map((v) => compute.delete(v.id)));
  const left = (await docker.listContainers({ all: true, filters: { label: ['nova-lfs.host=bench'] } }))
    .length;
  await compute.close();
  rmSync(dir, { recursive: true, force: true });

  return printReport(
    'docker',
    {
      docker: `${version.Version} (API ${version.ApiVersion})`,
      image: `busybox-static rootfs, ${image.sizeBytes} bytes, imported offline`,
      command: 'sh -c echo + sleep loop',
      network: 'none',
      rounds,
      measure: 'median of create->active (engine) vs create+start (raw dockerode), alternating',
      concurrentBoots: `${concurrent} in one request, one host (VCPU allocation ratio 64)`,
    },
    {
      engineBootMedian: { value: round(percentile(engineMs, 50)), unit: 'ms' },
      rawBootMedian: { value: round(percentile(rawMs, 50)), unit: 'ms' },
      engineBootP90: { value: round(percentile(engineMs, 90)), unit: 'ms' },
      rawBootP90: { value: round(percentile(rawMs, 90)), unit: 'ms' },
      overheadRatio: { value: round(ratio), unit: 'x', target: { op: '<=', value: 1.1 } },
      concurrentBootsWallTime: { value: Math.round(concurrentMs), unit: 'ms' },
      concurrentBootsActive: { value: active, unit: 'instances', target: { op: '>=', value: concurrent } },
      concurrentContainersRunning: { value: running, unit: 'containers' },
      containersLeftAfterDelete: { value: left, unit: 'containers', target: { op: '<=', value: 0 } },
    },
  );
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
