import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';

/** An ssh public key that parsed, with Nova's fingerprint (MD5 of the key blob, colon hex). */
export interface ParsedPublicKey {
  /** The key as stored: `type base64 [comment]`, one line. */
  readonly publicKey: string;
  readonly fingerprint: string;
}

const sshTypes = new Set([
  'ssh-rsa',
  'ssh-dss',
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
]);

function colonHex(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Reads the length-prefixed fields of an ssh key blob; undefined when it is malformed. */
function fields(blob: Buffer): Buffer[] | undefined {
  const out: Buffer[] = [];
  let at = 0;
  while (at < blob.length) {
    if (at + 4 > blob.length) return undefined;
    const n = blob.readUInt32BE(at);
    at += 4;
    if (n > blob.length - at) return undefined;
    out.push(blob.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Field counts per key type after the type name (RSA: e, n; DSA: p, q, g, y; ...). */
const fieldCounts: Readonly<Record<string, number>> = {
  'ssh-rsa': 2,
  'ssh-dss': 4,
  'ssh-ed25519': 1,
  'ecdsa-sha2-nistp256': 2,
  'ecdsa-sha2-nistp384': 2,
  'ecdsa-sha2-nistp521': 2,
};

/**
 * Parses an OpenSSH public key line (`ssh-ed25519 AAAA... comment`): a known type, a base64 blob
 * whose fields match the type (ed25519 keys 32 bytes) and an optional printable comment.
 * @returns undefined when it is not a valid key
 */
export function parseSshPublicKey(text: string): ParsedPublicKey | undefined {
  const line = text.trim();
  if (line.length > 16_384 || /[\p{Cc}]/u.test(line)) return undefined;
  const [type, data, ...comment] = line.split(/ +/);
  if (!type || !data || !sshTypes.has(type)) return undefined;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data)) return undefined;
  const blob = Buffer.from(data, 'base64');
  const parts = fields(blob);
  if (!parts || parts.length !== 1 + fieldCounts[type]! || parts[0]!.toString('latin1') !== type)
    return undefined;
  if (type === 'ssh-ed25519' && parts[1]!.length !== 32) return undefined;
  if (type.startsWith('ecdsa-') && parts[1]!.toString('latin1') !== type.slice('ecdsa-sha2-'.length))
    return undefined;
  return {
    publicKey: [type, data, ...comment].join(' '),
    fingerprint: colonHex(createHash('md5').update(blob).digest()),
  };
}

/**
 * Parses a PEM X.509 certificate (Nova's `x509` key pairs); the fingerprint is the SHA-1 of the
 * certificate, colon hex, as Nova shows it.
 */
export function parseX509(text: string): ParsedPublicKey | undefined {
  const pem = text.trim();
  if (pem.length > 65_536 || !pem.startsWith('-----BEGIN CERTIFICATE-----')) return undefined;
  try {
    const cert = new X509Certificate(pem);
    return { publicKey: `${pem}\n`, fingerprint: colonHex(createHash('sha1').update(cert.raw).digest()) };
  } catch {
    return undefined;
  }
}

function sshString(bytes: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

function mpint(b64url: string): Buffer {
  let bytes = Buffer.from(b64url, 'base64url');
  while (bytes.length > 1 && bytes[0] === 0) bytes = bytes.subarray(1);
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return sshString(bytes);
}

/**
 * Generates an RSA 2048 key pair as Nova does: the private key as PEM (PKCS#1, which ssh reads)
 * for the caller to keep, the public key as an OpenSSH line with Nova's comment.
 */
export function generateSshKeyPair(comment: string): ParsedPublicKey & { readonly privateKey: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const blob = Buffer.concat([sshString(Buffer.from('ssh-rsa')), mpint(jwk.e!), mpint(jwk.n!)]);
  return {
    publicKey: `ssh-rsa ${blob.toString('base64')} ${comment}`,
    fingerprint: colonHex(createHash('md5').update(blob).digest()),
    privateKey: privateKey.export({ format: 'pem', type: 'pkcs1' }).toString(),
  };
}
