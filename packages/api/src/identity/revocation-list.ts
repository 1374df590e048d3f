import type { Kysely } from 'kysely';
import type { IdentityTables } from './identity-tables.js';
import { newIdentityId } from './sql-backend.js';
import type { TokenPayload } from './token-codec.js';

/**
 * Token revocations in `identity_revocation`, shared by every process on the database: a token is
 * revoked when one of its audit ids (its own or the one it was re-scoped from) was revoked, or
 * when its user's tokens were revoked at or after it was issued. Rows go once every token they
 * could match has expired.
 */
export class RevocationList {
  private lastPurge = 0;

  constructor(
    private readonly db: Kysely<IdentityTables>,
    private readonly clock: () => number,
  ) {}

  /** Revokes every token carrying the audit id, until `expiresAt` (epoch ms). Idempotent. */
  async revokeAudit(auditId: string, expiresAt: number): Promise<void> {
    await this.db
      .insertInto('identity_revocation')
      .values({
        id: `a:${auditId}`,
        kind: 'audit',
        value: auditId,
        revoked_at: this.clock(),
        expires_at: expiresAt,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    await this.purgeNow();
  }

  /**
   * Revokes every token of the user issued until now; `maxTtlMs` is the longest a token lives.
   * @returns the revocation time (epoch ms)
   */
  async revokeUser(userId: string, maxTtlMs: number): Promise<number> {
    const at = this.clock();
    await this.db
      .insertInto('identity_revocation')
      .values({ id: newIdentityId(), kind: 'user', value: userId, revoked_at: at, expires_at: at + maxTtlMs })
      .execute();
    await this.purgeNow();
    return at;
  }

  /** Whether the token was revoked. */
  async isRevoked(payload: TokenPayload): Promise<boolean> {
    const row = await this.db
      .selectFrom('identity_revocation')
      .select('id')
      .where((eb) =>
        eb.or([
          eb.and([eb('kind', '=', 'audit'), eb('value', 'in', [...payload.auditIds])]),
          eb.and([
            eb('kind', '=', 'user'),
            eb('value', '=', payload.userId),
            eb('revoked_at', '>=', payload.issuedAt),
          ]),
        ]),
      )
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The latest revocation of the user's tokens (epoch ms), if any: new tokens are issued after it. */
  async userRevokedAt(userId: string): Promise<number | undefined> {
    const row = await this.db
      .selectFrom('identity_revocation')
      .select((eb) => eb.fn.max('revoked_at').as('at'))
      .where('kind', '=', 'user')
      .where('value', '=', userId)
      .executeTakeFirst();
    return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
  }

  /** Deletes revocations that can no longer match a live token (at most once a minute). */
  private async purgeNow(): Promise<void> {
    const now = this.clock();
    if (now - this.lastPurge < 60_000) return;
    this.lastPurge = now;
    await this.db.deleteFrom('identity_revocation').where('expires_at', '<', now).execute();
  }
}
