import { createHmac, randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';

const KEY_LENGTH = 32;
const DEFAULT_COST: Readonly<ScryptOptions> = { N: 16384, r: 8, p: 1 };

function scryptAsync(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_LENGTH, { ...options, maxmem: 64 * 1024 * 1024 }, (e, key) =>
      e ? reject(e) : resolve(key),
    ),
  );
}

/** Options of {@link PasswordHasher}. */
export interface PasswordHasherOptions {
  /** scrypt cost (default N=16384, r=8, p=1). */
  readonly cost?: ScryptOptions;
  /** How long a verified password is remembered, in ms (default 5 minutes). */
  readonly verifiedTtlMs?: number;
  /** Most remembered verifications (default 10,000). */
  readonly verifiedMax?: number;
  readonly clock?: () => number;
}

/**
 * Hashes passwords with scrypt and a per-user random salt (`scrypt$N$r$p$salt$hash`), and checks
 * them. A successful check is remembered in memory only, as an HMAC (with a secret of this
 * process) of the stored hash and the password, for a short time: repeated logins do not pay
 * scrypt again, a changed password (a new stored hash) is never matched by an old entry, and
 * nothing in the cache reveals a password.
 */
export class PasswordHasher {
  private readonly secret = randomBytes(32);
  private readonly verified = new Map<string, number>();
  private readonly cost: ScryptOptions;
  private readonly ttl: number;
  private readonly max: number;
  private readonly clock: () => number;

  constructor(options: PasswordHasherOptions = {}) {
    this.cost = options.cost ?? DEFAULT_COST;
    this.ttl = options.verifiedTtlMs ?? 300_000;
    this.max = options.verifiedMax ?? 10_000;
    this.clock = options.clock ?? Date.now;
  }

  /** A new hash string for the password. */
  async hash(password: string): Promise<string> {
    const salt = randomBytes(16);
    const key = await scryptAsync(password, salt, this.cost);
    const { N, r, p } = this.cost;
    return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
  }

  /** Whether the password matches the stored hash (constant time; cached when it does). */
  async verify(password: string, stored: string): Promise<boolean> {
    const memo = createHmac('sha256', this.secret)
      .update(stored)
      .update('\0')
      .update(password)
      .digest('base64url');
    const now = this.clock();
    const until = this.verified.get(memo);
    if (until !== undefined && until > now) return true;
    const parts = stored.split('$');
    if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
    const [, n, r, p, salt, expected] = parts as [string, string, string, string, string, string];
    const want = Buffer.from(expected, 'base64url');
    const got = await scryptAsync(password, Buffer.from(salt, 'base64url'), {
      N: Number(n),
      r: Number(r),
      p: Number(p),
    });
    const ok = got.length === want.length && timingSafeEqual(got, want);
    if (ok) this.remember(memo, now);
    return ok;
  }

  private remember(memo: string, now: number): void {
    if (this.verified.size >= this.max) {
      for (const [k, until] of this.verified) if (until <= now) this.verified.delete(k);
      if (this.verified.size >= this.max) this.verified.delete(this.verified.keys().next().value!);
    }
    this.verified.set(memo, now + this.ttl);
  }
}
