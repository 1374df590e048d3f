import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningService, runServe } from './serve-command.js';
import { parseServeArgs, serveHelp, UsageError } from './serve-options.js';
import { freePort } from './serve-process.test-helper.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nlfs-serve-'));
  dirs.push(d);
  return d;
}

async function start(
  dir: string,
  port: number,
  extra: string[] = [],
): Promise<{ service: RunningService; lines: string[] }> {
  const lines: string[] = [];
  const options = parseServeArgs([
    '--listen',
    `127.0.0.1:${port}`,
    '--data-dir',
    dir,
    '--fake-hosts',
    '2',
    '--log-level',
    'silent',
    ...extra,
  ]);
  if (options === 'help') throw new Error('unexpected help');
  const service = await runServe(options, { print: (l) => lines.push(l) });
  return { service, lines };
}

async function token(url: string, password: string, user = 'admin', project = 'admin'): Promise<Response> {
  return fetch(`${url}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: user, domain: { id: 'default' }, password } },
        },
        scope: { project: { name: project, domain: { id: 'default' } } },
      },
    }),
  });
}

describe('nova-lfs serve options', () => {
  it('documents its options in --help', () => {
    expect(parseServeArgs(['--help'])).toBe('help');
    for (const flag of [
      '--listen',
      '--data-dir',
      '--admin-password',
      '--docker-host',
      '--fake-hosts',
      '--store',
      '--policy-file',
      '--ldap-config',
    ])
      expect(serveHelp).toContain(flag);
  });

  it('refuses bad options naming them', () => {
    const bad: [string[], string][] = [
      [['--listen', 'nowhere', '--fake-hosts', '1'], '--listen'],
      [['--listen', '127.0.0.1:99999', '--fake-hosts', '1'], '--listen'],
      [['--fake-hosts', 'many'], '--fake-hosts'],
      [['--fake-hosts', '1', '--rate-limit', '-1'], '--rate-limit'],
      [['--fake-hosts', '1', '--admin-password', 'short'], '--admin-password'],
      [['--fake-hosts', '1', '--store', 'postgresql'], '--store'],
      [['--fake-hosts', '1', '--store', 'postgres', '--pg-url', ''], '--pg-url'],
      [['--docker-host', 'a;rm -rf /'], '--docker-host'],
      [['--bogus'], 'bogus'],
      [[], '--fake-hosts: name at least one host'],
    ];
    for (const [args, flag] of bad) {
      expect(() => parseServeArgs(args, {}), args.join(' ')).toThrow(UsageError);
      expect(() => parseServeArgs(args, {})).toThrow(flag);
    }
  });
});

describe('nova-lfs serve', () => {
  it('generates an admin password once, saves it (0600), prints it only then, and keeps everything across a restart', async () => {
    const dir = dataDir();
    const port = await freePort();
    const first = await start(dir, port);
    const saved = readFileSync(join(dir, 'admin-password'), 'utf8').trim();
    expect(statSync(join(dir, 'admin-password')).mode & 0o777).toBe(0o600);
    expect(first.lines.join('\n')).toContain(`export OS_PASSWORD='${saved}'`);
    expect(first.lines).toContain(`export OS_AUTH_URL=http://127.0.0.1:${port}/v3`);
    const issued = await token(first.service.url, saved);
    expect(issued.status).toBe(201);
    const subject = issued.headers.get('x-subject-token')!;
    const created = await fetch(`${first.service.url}/v2.1/servers`, {
      method: 'POST',
      headers: { 'x-auth-token': subject, 'content-type': 'application/json' },
      body: JSON.stringify({ server: { name: 'survivor', imageRef: 'none', flavorRef: '1' } }),
    });
    // no image yet: refused naming the field, nothing created
    expect(created.status).toBe(400);
    const flavor = await fetch(`${first.service.url}/v2.1/flavors`, {
      method: 'POST',
      headers: { 'x-auth-token': subject, 'content-type': 'application/json' },
      body: JSON.stringify({ flavor: { name: 'kept', ram: 128, vcpus: 1, disk: 1, id: 'kept' } }),
    });
    expect(flavor.status).toBe(200);
    const metrics = await fetch(`${first.service.url}/metrics`, { headers: { 'x-auth-token': subject } });
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(
      /nova_lfs_api_requests_total\{route="\/v2.1\/flavors",method="POST",status="200"\} 1/,
    );
    expect(text).toContain('nova_lfs_instances{vm_state="active"} 0');
    expect(text).toContain('nova_lfs_api_request_duration_seconds_bucket');
    expect((await fetch(`${first.service.url}/metrics`)).status).toBe(401);
    await first.service.stop();

    const second = await start(dir, port);
    expect(second.lines.join('\n')).not.toContain(saved);
    // the same token still validates after the restart (signed, keys in the store) and the flavor is there
    const shown = await fetch(`${second.service.url}/v2.1/flavors/kept`, {
      headers: { 'x-auth-token': subject },
    });
    expect(shown.status).toBe(200);
    expect(((await shown.json()) as { flavor: { ram: number } }).flavor.ram).toBe(128);
    // the starter flavors are seeded on the first start only: a deleted one stays deleted
    const del = await fetch(`${second.service.url}/v2.1/flavors/4`, {
      method: 'DELETE',
      headers: { 'x-auth-token': subject },
    });
    expect(del.status).toBe(202);
    await second.service.stop();
    const third = await start(dir, port);
    const gone = await fetch(`${third.service.url}/v2.1/flavors/4`, { headers: { 'x-auth-token': subject } });
    expect(gone.status).toBe(404);
    await third.service.stop();
    expect(existsSync(join(dir, 'nova-lfs.sqlite'))).toBe(true);
    expect(existsSync(join(dir, 'api.sqlite'))).toBe(true);
  });

  it('limits each caller to --rate-limit requests per second (429 with Retry-After)', async () => {
    const dir = dataDir();
    const port = await freePort();
    const { service } = await start(dir, port, ['--rate-limit', '5', '--admin-password', 'given-password-1']);
    const answers: Response[] = [];
    for (let i = 0; i < 20; i++) answers.push(await fetch(`${service.url}/v2.1/`));
    const limited = answers.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(answers.slice(0, 10).every((r) => r.status === 200)).toBe(true);
    await service.stop();
  });

  it('serves /metrics without a token only when asked to', async () => {
    const dir = dataDir();
    const port = await freePort();
    const { service } = await start(dir, port, ['--metrics-public', '--admin-password', 'given-password-1']);
    const r = await fetch(`${service.url}/metrics`);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('nova_lfs_builds_total');
    expect((await token(service.url, 'given-password-1')).status).toBe(201);
    expect(existsSync(join(dir, 'admin-password'))).toBe(false);
    await service.stop();
  });
});
