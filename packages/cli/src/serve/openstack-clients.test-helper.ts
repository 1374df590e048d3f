import { existsSync } from 'node:fs';
import { expect } from 'vitest';
import { type CliResult, cli, type ServeProcess } from './serve-process.test-helper.js';

/** Debian 12's real OpenStack clients (`python3-openstackclient` 6.0, `python3-novaclient` 18.1). */
export const openstackBin = '/usr/bin/openstack';
export const novaBin = '/usr/bin/nova';
/** Why the clients cannot run here, or undefined when both are installed. */
export const clientsMissing =
  existsSync(openstackBin) && existsSync(novaBin)
    ? undefined
    : 'the openstack and nova clients are not installed (bash scripts/install-system.sh)';

/** The OS_* variables of `nova-lfs serve`'s admin (project admin, domain Default). */
export function adminEnv(serve: ServeProcess, password: string): Record<string, string> {
  return {
    OS_AUTH_URL: `${serve.url}/v3`,
    OS_IDENTITY_API_VERSION: '3',
    OS_USERNAME: 'admin',
    OS_PASSWORD: password,
    OS_PROJECT_NAME: 'admin',
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
  };
}

/** The rows of a novaclient table (`| a | b |`), header first. */
export function novaTable(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) =>
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
}

/** The clients bound to the environment `env()` gives at call time (it is set in `beforeAll`). */
export interface Clients {
  /** Runs `openstack ARGS`. */
  os(args: readonly string[], extraEnv?: Record<string, string>): Promise<CliResult>;
  /** Runs `nova ARGS`. */
  nova(args: readonly string[]): Promise<CliResult>;
  /** Expects exit code 0 (the message names `what` and shows both outputs); resolves stdout. */
  ok(r: CliResult, what: string): string;
  /** Runs `openstack ARGS -f json`, expects success and parses the output. */
  // biome-ignore lint/suspicious/noExplicitAny: the clients' JSON, shaped by each test's assertions
  osJson(args: readonly string[], extraEnv?: Record<string, string>): Promise<any>;
  /** Deletes every server of every project (`--wait`), e.g. those a failed step left. */
  deleteAllServers(): Promise<void>;
}

/** See {@link Clients}. */
export function clients(env: () => Record<string, string>): Clients {
  const ok = (r: CliResult, what: string) => {
    expect(r.code, `${what}\n${r.stderr}\n${r.stdout}`).toBe(0);
    return r.stdout;
  };
  const os = (args: readonly string[], extraEnv: Record<string, string> = {}) =>
    cli(openstackBin, args, { ...env(), ...extraEnv });
  return {
    os,
    nova: (args) => cli(novaBin, args, env()),
    ok,
    osJson: async (args, extraEnv) =>
      JSON.parse(ok(await os([...args, '-f', 'json'], extraEnv), `openstack ${args.join(' ')}`)),
    deleteAllServers: async () => {
      const left = await os(['server', 'list', '--all-projects', '-f', 'value', '-c', 'ID']);
      for (const id of left.stdout.split('\n').filter(Boolean)) await os(['server', 'delete', '--wait', id]);
    },
  };
}
