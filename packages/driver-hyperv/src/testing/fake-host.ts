import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { sshFingerprint } from '../ssh-shell.js';

/** Where the FAKE Hyper-V host's start script keeps its keys, config and state. */
export const FAKE_HYPERV_BASE = '/var/lib/nova-lfs/fake-hyperv';

/** The command that starts the FAKE Hyper-V host (printed when tests skip). */
export const startFakeHyperVCommand = 'bash scripts/services/start-fake-hyperv-sshd.sh';

/** How to reach the FAKE Hyper-V host (a real sshd on loopback whose forced command is the FAKE emulator). */
export interface FakeHyperVHost {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly username: 'root';
  /** The client key the start script generated. */
  readonly privateKey: string;
  /** Fingerprint of the FAKE host's own host key (`SHA256:...`). */
  readonly hostKeySha256: string;
  /** The FAKE emulator's state directory: `vms/`, `faults/`, `calls.jsonl`. */
  readonly stateDir: string;
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(2_000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * The FAKE Hyper-V host's connection facts, or the reason it cannot be used (sshd not installed,
 * not started, keys missing) naming the command that starts it.
 */
export async function fakeHyperVHost(): Promise<{ host?: FakeHyperVHost; reason?: string }> {
  const port = Number(process.env.NOVA_LFS_FAKE_HYPERV_PORT ?? 12222);
  const base = FAKE_HYPERV_BASE;
  let privateKey: string;
  let hostKey: string;
  try {
    privateKey = await readFile(join(base, 'client_key'), 'utf8');
    hostKey = await readFile(join(base, 'ssh_host_ed25519_key.pub'), 'utf8');
  } catch {
    return {
      reason: `the FAKE Hyper-V host's keys are missing in ${base}; start it with: ${startFakeHyperVCommand}`,
    };
  }
  if (!(await portAnswers(port)))
    return {
      reason: `the FAKE Hyper-V sshd does not answer on 127.0.0.1:${port}; start it with: ${startFakeHyperVCommand}`,
    };
  const blob = Buffer.from(hostKey.trim().split(/\s+/)[1] ?? '', 'base64');
  return {
    host: {
      host: '127.0.0.1',
      port,
      username: 'root',
      privateKey,
      hostKeySha256: sshFingerprint(blob),
      stateDir: process.env.NOVA_LFS_FAKE_HYPERV_STATE ?? join(base, 'state'),
    },
  };
}
