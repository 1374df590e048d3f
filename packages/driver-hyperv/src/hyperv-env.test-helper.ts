import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Image, LocalImageService } from '@nova-lfs/core';
import { HyperVDriver, type HyperVDriverOptions } from './hyperv-driver.js';
import { type FakeHyperVHost, fakeHyperVHost } from './testing/index.js';

const found = await fakeHyperVHost();
/** The FAKE Hyper-V host, decided once per test file. With CI=true a missing FAKE host is an error. */
export const fake: FakeHyperVHost | undefined = found.host;
/** Whether the FAKE Hyper-V host answers. */
export const available = fake !== undefined;
if (found.reason) {
  if (process.env.CI === 'true') throw new Error(`CI=true and ${found.reason}`);
  console.warn(`skipping Hyper-V driver tests against the FAKE host: ${found.reason}`);
}

/** Fresh host directories for one test file (the FAKE host runs on this machine). */
export function tempRoots(): { diskRoot: string; imageRoot: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'nlfs-hyperv-'));
  return { dir, diskRoot: join(dir, 'instances'), imageRoot: join(dir, 'images') };
}

/** A driver on the FAKE host with its own host directories and hostId. */
export async function fakeDriver(
  hostId: string,
  extra: Partial<HyperVDriverOptions> = {},
): Promise<{ driver: HyperVDriver; diskRoot: string; imageRoot: string; dir: string }> {
  if (!fake) throw new Error('FAKE Hyper-V host is not available');
  const roots = tempRoots();
  await mkdir(roots.diskRoot, { recursive: true });
  await mkdir(roots.imageRoot, { recursive: true });
  const driver = new HyperVDriver({
    hostId,
    ssh: {
      host: fake.host,
      port: fake.port,
      username: fake.username,
      privateKey: fake.privateKey,
      hostKeySha256: fake.hostKeySha256,
    },
    diskRoot: roots.diskRoot,
    imageRoot: roots.imageRoot,
    stopTimeoutSeconds: 2,
    ...extra,
  });
  return { driver, ...roots };
}

/** An image service holding a small raw disk image as `raw-disk` (1.5 MiB of a fixed pattern). */
export async function rawImages(): Promise<{
  images: LocalImageService;
  image: Image;
  bytes: Buffer;
  dir: string;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'nlfs-hyperv-img-'));
  const bytes = Buffer.alloc(1.5 * 2 ** 20);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) & 0xff;
  const images = new LocalImageService(join(dir, 'images'));
  const image = await images.import(
    { id: 'raw-disk', name: 'raw-disk', diskFormat: 'raw', properties: { hypervisorType: 'hyperv' } },
    { kind: 'bytes', bytes },
  );
  return { images, image, bytes, dir };
}

/** One call the FAKE emulator recorded. */
export interface FakeCall {
  readonly at: number;
  readonly pid: number;
  readonly script: string | null;
  readonly known: boolean;
  readonly args?: Record<string, unknown>;
  readonly rejected?: string;
  readonly bodySha256?: string;
  readonly fault?: unknown;
}

/** The calls the FAKE emulator recorded since `since` (epoch ms). */
export async function fakeCalls(since = 0): Promise<FakeCall[]> {
  const read = (f: string) => readFile(join(fake!.stateDir, f), 'utf8').catch(() => '');
  const text = (await read('calls.jsonl.1')) + (await read('calls.jsonl')); // the log rotates at 16 MiB
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as FakeCall)
    .filter((c) => c.at >= since);
}

/** Installs a FAKE-only fault for one instance (see fake-hyperv-powershell.mjs). */
export async function injectFault(instanceId: string, fault: Record<string, unknown>): Promise<void> {
  const file = join(
    fake!.stateDir,
    'faults',
    `${createHash('sha256').update(instanceId).digest('hex')}.json`,
  );
  await mkdir(join(fake!.stateDir, 'faults'), { recursive: true });
  await writeFile(file, JSON.stringify(fault));
}

/** Removes a FAKE fault. */
export async function clearFault(instanceId: string): Promise<void> {
  await rm(join(fake!.stateDir, 'faults', `${createHash('sha256').update(instanceId).digest('hex')}.json`), {
    force: true,
  });
}

/** Appends a marker line to the FAKE call log (helps reading it by eye). */
export async function markCalls(text: string): Promise<void> {
  await appendFile(
    join(fake!.stateDir, 'calls.jsonl'),
    `${JSON.stringify({ at: Date.now(), marker: text })}\n`,
  );
}
