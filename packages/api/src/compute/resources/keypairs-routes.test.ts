import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { mv, resourcesHarness } from './resources.test-helper.js';

// Made with ssh-keygen and openssl; the fingerprints are theirs (`ssh-keygen -l -E md5`, `openssl x509 -fingerprint -sha1`).
const ed25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILbjTdQk4XcuXrSGEgqhuSC5F6cSLZNCt8sAIUWdH+Tn me@host';
const ed25519Md5 = '43:5f:c9:15:5a:63:4b:8e:b2:64:f1:6e:3c:45:ac:9f';
const rsa =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDEVqdtbE1ZplJsER5daJXUcwCRBCWFccTElwohyWgDZqsONzHujrdkxLUtNVsHiEok6QP8pVUQ2eRkVgMpxfwBIrAOkznwuF5nkZtKKXq30Mx+G7NjF3SDbGC61Ak0eQCfEZ+GMgfQ3lfJuYTTr9okuUqyzfS0Oiww3csrbi7pEw== r';
const rsaMd5 = 'a1:a0:7b:3b:5c:48:37:84:42:5e:56:db:e9:c2:8e:dc';
const cert = `-----BEGIN CERTIFICATE-----
MIIB+jCCAWOgAwIBAgIUOVY9zfewTzO1nWk9l7D1NIKhNoUwDQYJKoZIhvcNAQEL
BQAwDzENMAsGA1UEAwwEdGVzdDAeFw0yNjEyMDIxMzEwMDlaFw0zNjExMjkxMzEw
MDlaMA8xDTALBgNVBAMMBHRlc3QwgZ8wDQYJKoZIhvcNAQEBBQADgY0AMIGJAoGB
AKZBvvfEKhZLQCPZB3k2AHgjTsdpIhRSQKUHvEHy2xff8Kv2uFSLq4aOtTBFTYYk
hFljLIfaUFMy6bMPt5BUGhjAnhMeO7UDfLh7diE0gqkI/PHuVtZGkokaEA2lWemF
KlkWx/hy4BD55+uz9gpuuq4UUyoD/BfqV6AA7cHEAlXXAgMBAAGjUzBRMB0GA1Ud
DgQWBBQt5z+GdAEgkhrqbfCXCbCeR4AMuDAfBgNVHSMEGDAWgBQt5z+GdAEgkhrq
bfCXCbCeR4AMuDAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4GBAEhu
I9DykLmwryWuVxpCgBkC4/SU2d9kw8EsQLBQZ7CUBnAPBB5Ug0wCmD4KgnCLcHYy
wlo9U/Ahqh3BT3ryCZvaDyWMN6pIs8BXqdydL5PWitX85sdT2P9Boj3dfEjhYisy
Je/+yeedzV1QdX7Dpgs9IXyRY8ezEJd9zPgUd3FN
-----END CERTIFICATE-----`;
const certSha1 = 'a5:e7:df:e1:49:79:4e:6f:64:8a:06:6a:b5:a7:2c:79:fb:d8:d4:c2';

function sshKeygen(): boolean {
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    return (e as { status?: number }).status !== undefined && (e as { code?: string }).code !== 'ENOENT';
  }
}

describe('os-keypairs', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await resourcesHarness();
  });
  afterAll(() => h.close());

  const create = (token: string, keypair: Record<string, unknown>, headers = {}) =>
    h.call(token, { method: 'POST', url: '/v2.1/os-keypairs', payload: { keypair }, headers });
  const get = (token: string, url: string, headers = {}) => h.call(token, { method: 'GET', url, headers });

  it('imports ssh keys with Nova’s MD5 fingerprint (200 at 2.1, 201 and type from 2.2)', async () => {
    const r = await create('alice', { name: 'ed', public_key: `${ed25519}\n` });
    expect(r.statusCode).toBe(200);
    expect(r.json().keypair).toEqual({
      name: 'ed',
      public_key: ed25519,
      fingerprint: ed25519Md5,
      user_id: 'alice-id',
    });
    const r2 = await create('alice', { name: 'my rsa_key-1', public_key: rsa }, mv('2.2'));
    expect(r2.statusCode).toBe(201);
    expect(r2.json().keypair).toMatchObject({ fingerprint: rsaMd5, type: 'ssh' });
    const x = await create('alice', { name: 'cert', public_key: cert, type: 'x509' }, mv('2.2'));
    expect(x.json().keypair).toMatchObject({ fingerprint: certSha1, type: 'x509' });
    const list = (await get('alice', '/v2.1/os-keypairs', mv('2.2'))).json().keypairs;
    expect(list.map((k: { keypair: { name: string } }) => k.keypair.name)).toEqual([
      'cert',
      'ed',
      'my rsa_key-1',
    ]);
    expect(Object.keys(list[1].keypair).sort()).toEqual(['fingerprint', 'name', 'public_key', 'type']);
    const shown = (await get('alice', '/v2.1/os-keypairs/ed')).json().keypair;
    expect(shown).toMatchObject({ name: 'ed', user_id: 'alice-id', deleted: false, id: expect.any(Number) });
    expect(shown).not.toHaveProperty('type');
    expect((await create('alice', { name: 'ed', public_key: ed25519 })).statusCode).toBe(409);
  });

  it('generates an RSA key pair: the private key is answered once and matches the public key', async () => {
    const r = await create('alice', { name: 'gen' }, mv('2.2'));
    expect(r.statusCode).toBe(201);
    const k = r.json().keypair;
    expect(k.private_key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    expect(k.public_key).toMatch(/^ssh-rsa AAAAB3NzaC1yc2E/);
    const n = Buffer.from(
      createPublicKey(createPrivateKey(k.private_key)).export({ format: 'jwk' }).n!,
      'base64url',
    );
    expect(Buffer.from(k.public_key.split(' ')[1], 'base64').includes(n)).toBe(true);
    const shown = (await get('alice', '/v2.1/os-keypairs/gen')).json().keypair;
    expect(shown).not.toHaveProperty('private_key');
    expect(shown.fingerprint).toBe(k.fingerprint);
    if (sshKeygen()) {
      const dir = mkdtempSync(join(tmpdir(), 'kp-'));
      try {
        writeFileSync(join(dir, 'k.pub'), `${k.public_key}\n`);
        const out = execFileSync('ssh-keygen', ['-l', '-E', 'md5', '-f', join(dir, 'k.pub')]).toString();
        expect(out).toContain(`MD5:${k.fingerprint}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('refuses bad keys and names with a 400 naming the field', async () => {
    for (const public_key of [
      'ssh-rsa notbase64!!',
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==',
      'ssh-foo AAAA',
      `${ed25519.slice(0, -20)}`,
      "ssh-ed25519 AAAA'; DROP TABLE compute_keypair; --",
      `ssh-ed25519 ${Buffer.from('x'.repeat(100)).toString('base64')}`,
    ]) {
      const r = await create('alice', { name: 'bad', public_key });
      expect(r.statusCode, public_key).toBe(400);
      expect(r.json().badRequest.message).toContain('public key');
    }
    for (const name of ['a@b', 'a/b', '', 'x'.repeat(256), 'a\u0000b', '<x>']) {
      const r = await create('alice', { name, public_key: ed25519 });
      expect(r.statusCode, name).toBe(400);
      expect(r.json().badRequest.message).toContain('body.keypair.name');
    }
    expect((await create('alice', { name: 't', public_key: ed25519, type: 'ssh' })).statusCode).toBe(400);
    expect(
      (await create('alice', { name: 't', public_key: ed25519, type: 'pgp' }, mv('2.2'))).statusCode,
    ).toBe(400);
    expect((await create('alice', { name: 't', type: 'x509' }, mv('2.2'))).statusCode).toBe(400);
  });

  it('isolates users: bob sees none of alice’s pairs; admins name the user from 2.10', async () => {
    expect((await get('bob', '/v2.1/os-keypairs')).json().keypairs).toEqual([]);
    expect((await get('bob', '/v2.1/os-keypairs/ed')).statusCode).toBe(404);
    expect((await h.call('bob', { method: 'DELETE', url: '/v2.1/os-keypairs/ed' })).statusCode).toBe(404);
    expect((await get('bob', '/v2.1/os-keypairs?user_id=alice-id', mv('2.10'))).statusCode).toBe(403);
    const asAdmin = (await get('admin', '/v2.1/os-keypairs?user_id=alice-id', mv('2.10'))).json().keypairs;
    expect(asAdmin.length).toBeGreaterThan(0);
    const forBob = await create(
      'admin',
      { name: 'given', public_key: ed25519, user_id: 'bob-id' },
      mv('2.10'),
    );
    expect(forBob.json().keypair.user_id).toBe('bob-id');
    expect(
      (await create('alice', { name: 'x', public_key: ed25519, user_id: 'bob-id' }, mv('2.10'))).statusCode,
    ).toBe(403);
    expect((await get('bob', '/v2.1/os-keypairs/given')).statusCode).toBe(200);
    expect(
      (await h.call('bob', { method: 'DELETE', url: '/v2.1/os-keypairs/given', headers: mv('2.2') }))
        .statusCode,
    ).toBe(204);
    expect((await h.call('alice', { method: 'DELETE', url: '/v2.1/os-keypairs/ed' })).statusCode).toBe(202);
  });

  it('pages from 2.35 and counts the key_pairs quota per user', async () => {
    const page = (await get('alice', '/v2.1/os-keypairs?limit=1', mv('2.35'))).json();
    expect(page.keypairs).toHaveLength(1);
    const next = new URL(page.keypairs_links[0].href);
    const rest = (await get('alice', `${next.pathname}${next.search}`, mv('2.35'))).json();
    expect(rest.keypairs[0].keypair.name > page.keypairs[0].keypair.name).toBe(true);
    await h.call('admin', {
      method: 'PUT',
      url: '/v2.1/os-quota-sets/p2',
      payload: { quota_set: { key_pairs: 1 } },
    });
    expect((await create('bob', { name: 'one', public_key: ed25519 })).statusCode).toBe(200);
    const over = await create('bob', { name: 'two', public_key: ed25519 });
    expect(over.statusCode).toBe(403);
    expect(over.json().forbidden.message).toContain('Quota exceeded');
  });
});
