import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminEnv, clients, clientsMissing, novaBin } from './openstack-clients.test-helper.js';
import { cli, freePort, type ServeProcess, startServe } from './serve-process.test-helper.js';

/**
 * Moving and changing servers with the real clients of Debian 12 (`python3-openstackclient` 6.0,
 * `python3-novaclient` 18.1) against `nova-lfs serve` with two FAKE hosts: resize with confirm and
 * revert, cold and live migration, the migrations list, shelve and unshelve, rescue, lock with a
 * reason. (The FAKE driver stands in for the hypervisor; the same moves on real KVM hosts are the
 * driver-kvm engine tests.)
 */
const ready = !clientsMissing;
if (clientsMissing) {
  if (process.env.CI === 'true') throw new Error(`CI=true and ${clientsMissing}`);
  console.warn(`skipping the openstack CLI moves scenario: ${clientsMissing}`);
}

const password = 'moves-admin-secret';

describe.runIf(ready)(
  'moving servers with the openstack and nova CLIs against nova-lfs serve (FAKE hosts)',
  () => {
    let serve: ServeProcess;
    let dir: string;
    let env: Record<string, string>;

    const { os, ok, osJson, deleteAllServers } = clients(() => env);
    const show = (name: string, mv = '2.73') =>
      osJson(['--os-compute-api-version', mv, 'server', 'show', name]) as Promise<Record<string, unknown>>;
    /** Waits (through the API, as `--wait` does) until the server shows `status`. */
    const waitStatus = async (name: string, status: string) => {
      let last = '';
      for (let i = 0; i < 200; i++) {
        last = (await show(name)).status as string;
        if (last === status) return;
        if (last === 'ERROR') break;
      }
      throw new Error(`${name} is ${last}, never ${status}: ${JSON.stringify(await show(name))}`);
    };
    const hostOf = async (name: string) => (await show(name))['OS-EXT-SRV-ATTR:host'] as string;
    const flavorOf = async (name: string) =>
      ((await show(name)).flavor as { original_name: string }).original_name;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'nlfs-moves-'));
      const port = await freePort();
      serve = await startServe(
        [
          '--data-dir',
          join(dir, 'data'),
          '--admin-password',
          password,
          '--fake-hosts',
          '2',
          '--log-level',
          'warn',
        ],
        port,
      );
      env = adminEnv(serve, password);
      const file = join(dir, 'disk.raw');
      writeFileSync(file, Buffer.alloc(64 * 1024, 1));
      ok(await os(['image', 'create', '--disk-format', 'raw', '--file', file, 'moves-img']), 'image create');
      for (const [name, ram, vcpus] of [
        ['mv.small', '64', '1'],
        ['mv.large', '128', '2'],
      ] as const)
        ok(
          await os(['flavor', 'create', '--ram', ram, '--vcpus', vcpus, '--disk', '1', name]),
          'flavor create',
        );
      ok(
        await os(['server', 'create', '--image', 'moves-img', '--flavor', 'mv.small', '--wait', 'mover']),
        'server create',
      );
    });

    afterAll(async () => {
      if (serve) {
        await deleteAllServers();
        expect(await serve.stop()).toBe(0);
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('resizes and confirms, resizes and reverts (server resize --wait, resize confirm / revert)', async () => {
      ok(await os(['server', 'resize', '--flavor', 'mv.large', '--wait', 'mover']), 'resize');
      await waitStatus('mover', 'VERIFY_RESIZE');
      expect(await flavorOf('mover')).toBe('mv.large');
      ok(await os(['server', 'resize', 'confirm', 'mover']), 'resize confirm');
      await waitStatus('mover', 'ACTIVE');
      expect(await flavorOf('mover')).toBe('mv.large');

      ok(await os(['server', 'resize', '--flavor', 'mv.small', '--wait', 'mover']), 'resize back');
      await waitStatus('mover', 'VERIFY_RESIZE');
      ok(await os(['server', 'resize', 'revert', 'mover']), 'resize revert');
      await waitStatus('mover', 'ACTIVE');
      expect(await flavorOf('mover')).toBe('mv.large');
      // a confirm with nothing to confirm is refused with Nova's conflict
      const again = await os(['server', 'resize', 'confirm', 'mover']);
      expect(again.code).not.toBe(0);
      expect(again.stderr).toMatch(/409|confirmResize|state/i);
    });

    it('cold-migrates to the other host and confirms, then live-migrates back to a named host; the migrations list shows both', async () => {
      const before = await hostOf('mover');
      ok(await os(['server', 'migrate', '--wait', 'mover']), 'migrate');
      await waitStatus('mover', 'VERIFY_RESIZE');
      ok(await os(['server', 'migrate', 'confirm', 'mover']), 'migrate confirm');
      await waitStatus('mover', 'ACTIVE');
      const moved = await hostOf('mover');
      expect(moved).not.toBe(before);

      ok(
        await os([
          '--os-compute-api-version',
          '2.30',
          'server',
          'migrate',
          '--live-migration',
          '--host',
          before,
          '--wait',
          'mover',
        ]),
        'live migration',
      );
      await waitStatus('mover', 'ACTIVE');
      expect(await hostOf('mover')).toBe(before);

      const migrations = (await osJson([
        '--os-compute-api-version',
        '2.59',
        'server',
        'migration',
        'list',
        '--server',
        'mover',
      ])) as Array<Record<string, unknown>>;
      const kinds = migrations.map((m) => [m.Type, m.Status, m['Source Compute'], m['Dest Compute']]);
      expect(kinds).toEqual(
        expect.arrayContaining([
          ['migration', 'confirmed', before, moved],
          ['live-migration', 'completed', moved, before],
        ]),
      );
      // the nova CLI reads the same list
      const nova = await cli(novaBin, ['--os-compute-api-version', '2.59', 'migration-list'], env);
      ok(nova, 'nova migration-list');
      expect(nova.stdout).toContain('live-migration');
    });

    it('shelves (offloaded: no host) and unshelves onto a host', async () => {
      ok(await os(['server', 'shelve', 'mover']), 'shelve');
      await waitStatus('mover', 'SHELVED_OFFLOADED');
      expect(await hostOf('mover')).toBeNull();
      ok(await os(['server', 'unshelve', 'mover']), 'unshelve');
      await waitStatus('mover', 'ACTIVE');
      expect(await hostOf('mover')).toMatch(/^fake-/);
    });

    it('rescues and unrescues', async () => {
      ok(await os(['server', 'rescue', 'mover']), 'rescue');
      await waitStatus('mover', 'RESCUE');
      ok(await os(['server', 'unrescue', 'mover']), 'unrescue');
      await waitStatus('mover', 'ACTIVE');
    });

    it('locks with a reason (shown at 2.73) and unlocks; the nova CLI does the same', async () => {
      ok(
        await os([
          '--os-compute-api-version',
          '2.73',
          'server',
          'lock',
          '--reason',
          'host maintenance',
          'mover',
        ]),
        'lock',
      );
      expect(await show('mover')).toMatchObject({ locked: true, locked_reason: 'host maintenance' });
      ok(await os(['server', 'unlock', 'mover']), 'unlock');
      expect(await show('mover')).toMatchObject({ locked: false });
      const nova = (args: readonly string[]) => cli(novaBin, args, env);
      ok(await nova(['lock', 'mover']), 'nova lock');
      expect((await show('mover')).locked).toBe(true);
      ok(await nova(['unlock', 'mover']), 'nova unlock');
      expect((await show('mover')).locked).toBe(false);
    });
  },
);
