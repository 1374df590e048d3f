import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { IdentityTables } from './identity-tables.js';

/** Options of {@link SigningKeyRing.rotate}. */
export interface RotateOptions {
  /** Keys kept able to validate, the new primary included (default 3); older ones retire. */
  readonly keep?: number;
}

/**
 * The token signing keys, kept in `identity_signing_key` so tokens survive a restart and every
 * process on the database shares them. The newest `primary` signs; `secondary` keys still
 * validate; `retired` keys validate nothing. A token naming a key this process does not know
 * makes it re-read the table (at most once a second), so a rotation elsewhere is picked up.
 */
export class SigningKeyRing {
  private keys = new Map<string, Buffer>();
  private primaryId = '';
  private lastReload = 0;

  private constructor(
    private readonly db: Kysely<IdentityTables>,
    private readonly clock: () => number,
  ) {}

  /** Loads the keys, making a first primary key if there is none. */
  static async open(db: Kysely<IdentityTables>, clock: () => number): Promise<SigningKeyRing> {
    const ring = new SigningKeyRing(db, clock);
    await ring.reload();
    if (!ring.primaryId) {
      await ring.insertPrimary();
      await ring.reload();
    }
    return ring;
  }

  /** The key that signs new tokens. */
  primary(): { id: string; secret: Buffer } {
    return { id: this.primaryId, secret: this.keys.get(this.primaryId)! };
  }

  /** The secret of a key that validates, if any. */
  secret(keyId: string): Buffer | undefined {
    return this.keys.get(keyId);
  }

  /** Whether an unknown key id is worth a re-read of the table now. */
  async refreshFor(keyId: string): Promise<boolean> {
    if (this.keys.has(keyId)) return true;
    const now = this.clock();
    if (now - this.lastReload < 1000 || !/^[0-9a-f]{16}$/.test(keyId)) return false;
    await this.reload();
    return this.keys.has(keyId);
  }

  /** Makes a new primary key; the old primary becomes secondary; keys beyond `keep` retire. */
  async rotate(options: RotateOptions = {}): Promise<string> {
    const keep = Math.max(2, options.keep ?? 3);
    const id = await this.db.transaction().execute(async (tx) => {
      await tx
        .updateTable('identity_signing_key')
        .set({ state: 'secondary' })
        .where('state', '=', 'primary')
        .execute();
      const newId = await this.insertPrimary(tx);
      const live = await tx
        .selectFrom('identity_signing_key')
        .select(['id'])
        .where('state', '!=', 'retired')
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
      const retire = live
        .filter((k) => k.id !== newId)
        .slice(keep - 1)
        .map((k) => k.id);
      if (retire.length)
        await tx
          .updateTable('identity_signing_key')
          .set({ state: 'retired' })
          .where('id', 'in', retire)
          .execute();
      return newId;
    });
    await this.reload();
    return id;
  }

  private async insertPrimary(db: Kysely<IdentityTables> = this.db): Promise<string> {
    const id = randomBytes(8).toString('hex');
    // strictly newer than every key so far (keys are ordered by age, also within one millisecond)
    const newest = await db
      .selectFrom('identity_signing_key')
      .select((eb) => eb.fn.max('created_at').as('at'))
      .executeTakeFirst();
    const at = Math.max(this.clock(), newest?.at == null ? 0 : Number(newest.at) + 1);
    await db
      .insertInto('identity_signing_key')
      .values({ id, secret: randomBytes(32).toString('base64'), state: 'primary', created_at: at })
      .execute();
    return id;
  }

  private async reload(): Promise<void> {
    const rows = await this.db
      .selectFrom('identity_signing_key')
      .selectAll()
      .where('state', '!=', 'retired')
      .orderBy('created_at', 'asc')
      .orderBy('id', 'asc')
      .execute();
    const keys = new Map<string, Buffer>();
    let primary = '';
    for (const row of rows) {
      keys.set(row.id, Buffer.from(row.secret, 'base64'));
      if (row.state === 'primary') primary = row.id;
    }
    this.keys = keys;
    this.primaryId = primary;
    this.lastReload = this.clock();
  }
}
