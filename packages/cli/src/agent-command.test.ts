import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultNatsUrl, natsAvailable, startNatsCommand } from '@nova-lfs/bus-nats/testing';
import { describe, expect, it } from 'vitest';

const available = await natsAvailable(defaultNatsUrl);
if (!available) {
  const reason = `nats-server does not answer at ${defaultNatsUrl}; start it with: ${startNatsCommand}`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping the nova-lfs agent test: ${reason}`);
}

const mainTs = fileURLToPath(new URL('./main.ts', import.meta.url));

/** Runs `nova-lfs ARGS` from the sources; resolves with its exit code and output. */
function novaLfs(args: string[], onStdout?: (line: string, kill: () => void) => void) {
  const child = spawn(
    process.execPath,
    ['--conditions=@nova-lfs/source', '--import', 'tsx', mainTs, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const line of d.toString().split('\n')) if (line) onStdout?.(line, () => child.kill('SIGTERM'));
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>(
    (resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
}

describe.skipIf(!available)('nova-lfs agent', () => {
  it('serves a host until SIGTERM (ready line first, then a clean exit 0); bad arguments exit 2 naming the option', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nlfs-cli-agent-'));
    try {
      const hostId = `cliagent-${process.pid}`;
      const ready: unknown[] = [];
      const run = await novaLfs(
        ['agent', '--host-id', hostId, '--driver', 'fake', '--state-dir', dir, '--heartbeat-ms', '500'],
        (line, kill) => {
          const parsed = JSON.parse(line) as { event?: string };
          if (parsed.event === 'agent.ready') {
            ready.push(parsed);
            kill();
          }
        },
      );
      expect(ready).toEqual([expect.objectContaining({ event: 'agent.ready', hostId, driver: 'fake' })]);
      // a SIGTERM sent as soon as the ready line is read stops it cleanly (exit 0, no signal death)
      expect({ code: run.code, signal: run.signal, stderr: run.stderr }).toEqual({
        code: 0,
        signal: null,
        stderr: '',
      });

      const bad = await novaLfs(['agent', '--host-id', 'x', '--driver', 'hyperv; rm -rf /']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('"option":"driver"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
