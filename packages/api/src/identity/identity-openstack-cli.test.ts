import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { createFakeCloud, type FakeCloud } from '@nova-lfs/core/testing';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApiApp } from '../http/api-app.js';
import type { ApiServices, PublicUrls } from '../http/api-services.js';
import { PolicyEngine } from '../policy/policy-engine.js';
import { adminPassword, memoryDb, openIdentity, recordingLogger } from './identity.test-helper.js';
import { identityRoutes } from './identity-routes.js';
import type { IdentityService } from './identity-service.js';

const run = promisify(execFile);
const cli = '/usr/bin/openstack';
const present = existsSync(cli);
if (!present) {
  const reason = `${cli} is missing; install it with: apt-get install python3-openstackclient (scripts/install-system.sh)`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping the OpenStack CLI test: ${reason}`);
}

/** A free loopback port (the catalog must name the port before the app listens). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.runIf(present)('the real openstack CLI against the identity service', () => {
  let app: FastifyInstance;
  let identity: IdentityService;
  let cloud: FakeCloud;
  let db: Kysely<object>;
  let base: string;
  let logLines: string[];

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const urls: PublicUrls = { compute: `${base}/v2.1`, image: `${base}/image`, identity: `${base}/v3` };
    cloud = await createFakeCloud();
    db = memoryDb();
    identity = await openIdentity(db, { urls });
    const services: ApiServices = { engine: cloud.compute, policy: new PolicyEngine(), urls, db };
    const recorded = recordingLogger();
    logLines = recorded.lines;
    app = buildApiApp({
      tokens: identity,
      routes: identityRoutes(services, identity),
      identityUrl: urls.identity,
      logger: recorded.logger,
    });
    await app.listen({ host: '127.0.0.1', port });
  });
  afterAll(async () => {
    await app?.close();
    await identity?.close();
    await cloud?.compute.close();
    await db?.destroy();
  });

  /** Runs the CLI as `user` (password method, Default domains) with a clean environment. */
  async function openstack(
    args: string[],
    as: { user: string; password: string; project: string } = {
      user: 'admin',
      password: adminPassword,
      project: 'admin',
    },
  ): Promise<string> {
    const env: Record<string, string> = {
      PATH: '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      LANG: 'C.UTF-8',
    };
    const auth = [
      '--os-auth-url',
      `${base}/v3`,
      '--os-identity-api-version',
      '3',
      '--os-username',
      as.user,
      '--os-password',
      as.password,
      '--os-project-name',
      as.project,
      '--os-user-domain-name',
      'Default',
      '--os-project-domain-name',
      'Default',
    ];
    try {
      const { stdout } = await run(cli, [...auth, ...args], { env, timeout: 60_000 });
      return stdout;
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string; message: string };
      throw new Error(
        `openstack ${args.join(' ')} failed: ${err.message}\n${err.stderr ?? ''}${err.stdout ?? ''}`,
      );
    }
  }

  it('issues a token, creates a project and a user with a password, and adds a role', async () => {
    const token = JSON.parse(await openstack(['token', 'issue', '-f', 'json'])) as Record<string, string>;
    expect(token.id).toMatch(/\./);
    expect(token.project_id).toMatch(/^[0-9a-f]{32}$/);
    expect(token.user_id).toMatch(/^[0-9a-f]{32}$/);
    expect(Date.parse(token.expires!)).toBeGreaterThan(Date.now() + 120_000);

    const project = JSON.parse(
      await openstack(['project', 'create', '--description', 'made by the CLI', 'cli-project', '-f', 'json']),
    ) as Record<string, unknown>;
    expect(project).toMatchObject({ name: 'cli-project', domain_id: 'default', enabled: true });

    const user = JSON.parse(
      await openstack(['user', 'create', '--password', 'pw-cli-user-1', 'u1', '-f', 'json']),
    ) as Record<string, unknown>;
    expect(user).toMatchObject({ name: 'u1', domain_id: 'default', enabled: true });

    expect(await openstack(['role', 'add', '--project', 'cli-project', '--user', 'u1', 'member'])).toBe('');

    const assignments = JSON.parse(
      await openstack(['role', 'assignment', 'list', '--project', 'cli-project', '--names', '-f', 'json']),
    ) as Record<string, string>[];
    expect(assignments).toEqual([
      expect.objectContaining({ Role: 'member', User: 'u1@Default', Project: 'cli-project@Default' }),
    ]);

    // the new user logs in to the project with the password it was given
    const own = JSON.parse(
      await openstack(['token', 'issue', '-f', 'json'], {
        user: 'u1',
        password: 'pw-cli-user-1',
        project: 'cli-project',
      }),
    ) as Record<string, string>;
    expect(own.project_id).toBe(project.id);
    expect(own.user_id).toBe(user.id);

    const log = logLines.join('\n');
    expect(log).toContain('/v3/auth/tokens');
    expect(log).not.toContain('pw-cli-user-1');
    expect(log).not.toContain(adminPassword);
  }, 240_000);

  it('shows the wrong-password failure the way the CLI reports Keystone’s 401', async () => {
    const failure = await openstack(['token', 'issue'], {
      user: 'admin',
      password: 'wrong',
      project: 'admin',
    }).then(
      () => 'succeeded',
      (e: Error) => e.message,
    );
    expect(failure).toContain('The request you have made requires authentication. (HTTP 401)');
  }, 120_000);
});
