import { describe, expect, it } from 'vitest';
import {
  activeDirectoryMapping,
  comparableDn,
  decodeBinaryId,
  decodeDirectoryId,
  encodeBinaryId,
  encodeDirectoryId,
  groupFromEntry,
  isDnUnder,
  isEnabled,
  type LdapMapping,
  openLdapMapping,
  userFromEntry,
  userIdOf,
} from './ldap-mapping.js';

const withEnabled = (over: Partial<LdapMapping>): LdapMapping => ({ ...openLdapMapping, ...over });

describe('isEnabled (Keystone user_enabled_* semantics)', () => {
  it('the AD mask: enabled unless bit 2 (ACCOUNTDISABLE) is set', () => {
    const ad = activeDirectoryMapping;
    expect(isEnabled(ad, '512')).toBe(true); // NORMAL_ACCOUNT
    expect(isEnabled(ad, '514')).toBe(false); // NORMAL_ACCOUNT | ACCOUNTDISABLE
    expect(isEnabled(ad, '66048')).toBe(true); // | DONT_EXPIRE_PASSWORD
    expect(isEnabled(ad, '66050')).toBe(false);
    expect(isEnabled(ad, ' 2 ')).toBe(false);
    expect(isEnabled(ad, undefined)).toBe(true); // userEnabledDefault 512
    expect(isEnabled({ ...ad, userEnabledDefault: '514' }, undefined)).toBe(false);
  });

  it('a mask with several bits disables only when all of them are set (Keystone: (v & mask) == mask)', () => {
    const m = withEnabled({ userEnabledAttribute: 'flags', userEnabledMask: 6 });
    expect(isEnabled(m, '2')).toBe(true);
    expect(isEnabled(m, '4')).toBe(true);
    expect(isEnabled(m, '6')).toBe(false);
  });

  it('a masked value that is not an integer fails closed', () => {
    for (const v of ['', 'TRUE', '0x2', '1e3', '99999999999', 'NaN'])
      expect(isEnabled(activeDirectoryMapping, v)).toBe(false);
  });

  it('a boolean attribute, plain and inverted; invert is ignored with a mask', () => {
    const plain = withEnabled({ userEnabledAttribute: 'enabled' });
    expect(isEnabled(plain, 'TRUE')).toBe(true);
    expect(isEnabled(plain, 'true')).toBe(true);
    expect(isEnabled(plain, 'FALSE')).toBe(false);
    expect(isEnabled(plain, 'yes')).toBe(false);
    expect(isEnabled(plain, undefined)).toBe(true); // default TRUE
    const inverted = withEnabled({
      userEnabledAttribute: 'nsAccountLock',
      userEnabledInvert: true,
      userEnabledDefault: 'FALSE',
    });
    expect(isEnabled(inverted, 'TRUE')).toBe(false);
    expect(isEnabled(inverted, 'false')).toBe(true);
    expect(isEnabled(inverted, undefined)).toBe(true);
    expect(isEnabled({ ...activeDirectoryMapping, userEnabledInvert: true }, '512')).toBe(true);
  });

  it('no enabled attribute configured: everyone is enabled', () => {
    expect(isEnabled(openLdapMapping, undefined)).toBe(true);
    expect(isEnabled(openLdapMapping, 'FALSE')).toBe(true);
  });
});

describe('directory ids', () => {
  it('URL-safe values are their own ids', () => {
    for (const v of ['alice', 'bob.builder', 'a_b-c', '7c73fe8e-829b-1041-905c-99c20e007490'])
      expect(encodeDirectoryId(v)).toBe(v);
  });

  it('other values become ~base64url, reversibly, and are URL-safe', () => {
    for (const v of [
      'Alice Liddell',
      'ålice',
      'a/b',
      '~alice',
      'a?b#c',
      'x'.repeat(65),
      '*',
      ')(uid=*',
      'a\0b',
    ]) {
      const id = encodeDirectoryId(v);
      expect(id.startsWith('~')).toBe(true);
      expect(encodeURIComponent(id)).toBe(id);
      expect(decodeDirectoryId(id)).toBe(v);
    }
  });

  it('decoding refuses what was never issued', () => {
    expect(decodeDirectoryId('a b')).toBeUndefined();
    expect(decodeDirectoryId('*')).toBeUndefined();
    expect(decodeDirectoryId('~')).toBeUndefined();
    expect(decodeDirectoryId('~!!')).toBeUndefined();
    expect(decodeDirectoryId(`~${Buffer.from('alice').toString('base64url')}`)).toBeUndefined(); // plain form exists
    expect(decodeDirectoryId(`~${'A'.repeat(5000)}`)).toBeUndefined();
  });

  it('binary ids (AD objectGUID) are lowercase hex', () => {
    const guid = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex');
    expect(encodeBinaryId(guid)).toBe('0f1e2d3c4b5a69788796a5b4c3d2e1f0');
    expect(decodeBinaryId('0f1e2d3c4b5a69788796a5b4c3d2e1f0')?.equals(guid)).toBe(true);
    expect(decodeBinaryId('0F1E')).toBeUndefined();
    expect(decodeBinaryId('abc')).toBeUndefined();
    const m = { ...activeDirectoryMapping, userIdAttribute: 'objectGUID', userIdAttributeIsBinary: true };
    expect(userIdOf(m, { dn: 'cn=x', objectGUID: guid })).toBe('0f1e2d3c4b5a69788796a5b4c3d2e1f0');
  });
});

describe('entries to users and groups', () => {
  it('maps attributes case-insensitively and skips entries without id or name', () => {
    const entry = {
      dn: 'CN=Alice,OU=Users,DC=corp',
      samaccountname: 'alice',
      MAIL: 'alice@corp',
      userAccountControl: '514',
    };
    expect(userFromEntry(activeDirectoryMapping, entry, 'd1')).toEqual({
      id: 'alice',
      name: 'alice',
      domainId: 'd1',
      enabled: false,
      email: 'alice@corp',
      description: null,
      defaultProjectId: null,
    });
    expect(userFromEntry(activeDirectoryMapping, { dn: 'cn=x', mail: 'x' }, 'd1')).toBeUndefined();
    expect(groupFromEntry(openLdapMapping, { dn: 'cn=g', cn: 'g' }, 'd1')).toEqual({
      id: 'g',
      name: 'g',
      domainId: 'd1',
      description: '',
    });
    expect(groupFromEntry(openLdapMapping, { dn: 'cn=g', cn: 'Domain Users' }, 'd1')?.id).toBe(
      encodeDirectoryId('Domain Users'),
    );
  });

  it('tells whether a DN lies under a tree', () => {
    expect(isDnUnder('uid=alice,ou=users,dc=nova,dc=test', 'ou=users,dc=nova,dc=test')).toBe(true);
    expect(isDnUnder('UID=alice, OU=Users,DC=Nova,DC=Test', 'ou=users,dc=nova,dc=test')).toBe(true);
    expect(isDnUnder('uid=alice,ou=users,dc=nova,dc=test', 'ou=groups,dc=nova,dc=test')).toBe(false);
    expect(isDnUnder('cn=x\\,ou=users,dc=nova,dc=test', 'ou=users,dc=nova,dc=test')).toBe(false);
    expect(comparableDn('cn=a\\,b,dc=x')).toEqual(['cn=a\\,b', 'dc=x']);
  });
});
