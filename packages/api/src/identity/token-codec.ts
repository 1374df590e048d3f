import { createHmac, timingSafeEqual } from 'node:crypto';

/** What a token is issued for. */
export type TokenScope =
  | { readonly type: 'project'; readonly id: string }
  | { readonly type: 'domain'; readonly id: string }
  | { readonly type: 'system' }
  | { readonly type: 'unscoped' };

/** Authentication methods a token records. */
export type AuthMethod = 'password' | 'token';

/** What a token carries, signed: nothing else is needed (nor stored) to validate it. */
export interface TokenPayload {
  /** Id of the signing key. */
  readonly keyId: string;
  readonly userId: string;
  readonly scope: TokenScope;
  readonly methods: readonly AuthMethod[];
  /** Epoch ms. */
  readonly issuedAt: number;
  /** Epoch ms. */
  readonly expiresAt: number;
  /** This token's audit id first, then the audit id of the token it was re-scoped from. */
  readonly auditIds: readonly string[];
}

interface Wire {
  k: string;
  u: string;
  s: string;
  m: string;
  i: number;
  e: number;
  a: string[];
}

const MAX_TOKEN_LENGTH = 2048;

function scopeText(scope: TokenScope): string {
  switch (scope.type) {
    case 'project':
      return `p:${scope.id}`;
    case 'domain':
      return `d:${scope.id}`;
    case 'system':
      return 's';
    case 'unscoped':
      return '';
  }
}

function scopeOf(text: string): TokenScope | undefined {
  if (text === '') return { type: 'unscoped' };
  if (text === 's') return { type: 'system' };
  if (text.startsWith('p:')) return { type: 'project', id: text.slice(2) };
  if (text.startsWith('d:')) return { type: 'domain', id: text.slice(2) };
  return undefined;
}

function mac(secret: Buffer, body: string): Buffer {
  return createHmac('sha256', secret).update(body).digest();
}

/**
 * Writes a token: the payload as URL-safe base64 JSON, a dot, and its HMAC-SHA256 under the key
 * the payload names. Compact, URL-safe, tamper-evident; not encrypted (it holds ids only).
 */
export function encodeToken(payload: TokenPayload, secret: Buffer): string {
  const wire: Wire = {
    k: payload.keyId,
    u: payload.userId,
    s: scopeText(payload.scope),
    m: payload.methods.join(','),
    i: payload.issuedAt,
    e: payload.expiresAt,
    a: [...payload.auditIds],
  };
  const body = Buffer.from(JSON.stringify(wire)).toString('base64url');
  return `${body}.${mac(secret, body).toString('base64url')}`;
}

/** The key id a token claims, without checking anything else (`undefined` if malformed). */
export function tokenKeyId(token: string): string | undefined {
  return readToken(token)?.payload.keyId;
}

/**
 * Reads and checks a token with the secret of the key it names (`secretOf`).
 * @returns the payload, or `undefined` when the token is malformed, names an unknown key or its
 *   signature does not match
 */
export function decodeToken(
  token: string,
  secretOf: (keyId: string) => Buffer | undefined,
): TokenPayload | undefined {
  const read = readToken(token);
  if (!read) return undefined;
  const secret = secretOf(read.payload.keyId);
  if (!secret) return undefined;
  const want = mac(secret, read.body);
  const got = Buffer.from(read.signature, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
  return read.payload;
}

function readToken(token: string): { body: string; signature: string; payload: TokenPayload } | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined;
  const dot = token.indexOf('.');
  if (dot <= 0 || dot !== token.lastIndexOf('.')) return undefined;
  const body = token.slice(0, dot);
  let wire: Partial<Wire>;
  try {
    wire = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<Wire>;
  } catch {
    return undefined;
  }
  if (typeof wire !== 'object' || wire === null) return undefined;
  const { k, u, s, m, i, e, a } = wire;
  if (typeof k !== 'string' || typeof u !== 'string' || typeof s !== 'string' || typeof m !== 'string')
    return undefined;
  if (typeof i !== 'number' || typeof e !== 'number' || !Array.isArray(a) || a.length === 0) return undefined;
  if (!a.every((x) => typeof x === 'string')) return undefined;
  const scope = scopeOf(s);
  const methods = m.split(',').filter((x): x is AuthMethod => x === 'password' || x === 'token');
  if (!scope || methods.length === 0) return undefined;
  return {
    body,
    signature: token.slice(dot + 1),
    payload: { keyId: k, userId: u, scope, methods, issuedAt: i, expiresAt: e, auditIds: a },
  };
}
