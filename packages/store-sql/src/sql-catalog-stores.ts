import { DuplicateError, type Flavor, type Host, NotFoundError, type ServerGroup } from '@nova-lfs/core';
import type { FlavorStore, HostStore, ServerGroupStore } from '@nova-lfs/core/ports';
import type { Compilable } from 'kysely';
import type { SqlDatabase } from './database.js';
import { isDuplicate } from './errors.js';
import { ExclusiveReadCache } from './exclusive-read-cache.js';
import { type BoundStatement, PreparedStatement } from './statement.js';

const rowsOf = async <R>(database: SqlDatabase, q: Compilable<unknown>): Promise<R[]> =>
  (await database.exec.run<R>(q.compile())).rows;

/** `select data from <table> where id = ?`, compiled once. */
const byId = (database: SqlDatabase, table: 'hosts' | 'flavors' | 'server_groups') =>
  PreparedStatement.of<{ id: string }>((p) =>
    database.db.selectFrom(table).select('data').where('id', '=', p('id')),
  );

/**
 * {@link HostStore} on SQL. When the database is exclusive to this process, hosts read once are
 * kept in memory (every change goes through this store).
 */
export class SqlHostStore implements HostStore {
  private readonly getStmt;
  private readonly cache;
  constructor(private readonly database: SqlDatabase) {
    this.getStmt = byId(database, 'hosts');
    this.cache = new ExclusiveReadCache<Host>(database);
  }
  async upsert(host: Host): Promise<void> {
    this.cache.forget(host.id);
    const data = JSON.stringify(host);
    await this.database.exec.run(
      this.database.db
        .insertInto('hosts')
        .values({ id: host.id, data })
        .onConflict((oc) => oc.column('id').doUpdateSet({ data }))
        .compile(),
    );
    this.cache.forget(host.id); // a read queued before the write may have cached the old row
  }
  async get(id: string): Promise<Host | undefined> {
    return this.cache.get(id, async () => {
      const [row] = (await this.database.exec.run<{ data: string }>(this.getStmt.bind({ id }))).rows;
      return row ? (JSON.parse(row.data) as Host) : undefined;
    });
  }
  async list(): Promise<Host[]> {
    return (
      await rowsOf<{ data: string }>(this.database, this.database.db.selectFrom('hosts').select('data'))
    ).map((r) => JSON.parse(r.data) as Host);
  }
  async remove(id: string): Promise<void> {
    this.cache.forget(id);
    await this.database.exec.run(this.database.db.deleteFrom('hosts').where('id', '=', id).compile());
    this.cache.forget(id);
  }
}

/**
 * {@link FlavorStore} on SQL. When the database is exclusive to this process, flavors read once
 * are kept in memory (every change goes through this store).
 */
export class SqlFlavorStore implements FlavorStore {
  private readonly getStmt;
  private readonly cache;
  constructor(private readonly database: SqlDatabase) {
    this.getStmt = byId(database, 'flavors');
    this.cache = new ExclusiveReadCache<Flavor>(database);
  }
  async get(id: string): Promise<Flavor | undefined> {
    return this.cache.get(id, async () => {
      const [row] = (await this.database.exec.run<{ data: string }>(this.getStmt.bind({ id }))).rows;
      return row ? (JSON.parse(row.data) as Flavor) : undefined;
    });
  }
  async list(): Promise<Flavor[]> {
    return (
      await rowsOf<{ data: string }>(this.database, this.database.db.selectFrom('flavors').select('data'))
    ).map((r) => JSON.parse(r.data) as Flavor);
  }
  async add(flavor: Flavor): Promise<void> {
    try {
      await this.database.exec.run(
        this.database.db
          .insertInto('flavors')
          .values({ id: flavor.id, data: JSON.stringify(flavor) })
          .compile(),
      );
    } catch (e) {
      if (isDuplicate(e)) throw new DuplicateError('flavor', flavor.id);
      throw e;
    }
  }
  async replace(flavor: Flavor): Promise<boolean> {
    this.cache.forget(flavor.id);
    const { affected } = await this.database.exec.run(
      this.database.db
        .updateTable('flavors')
        .set({ data: JSON.stringify(flavor) })
        .where('id', '=', flavor.id)
        .compile(),
    );
    this.cache.forget(flavor.id);
    return affected > 0;
  }
  async remove(id: string): Promise<void> {
    this.cache.forget(id);
    await this.database.exec.run(this.database.db.deleteFrom('flavors').where('id', '=', id).compile());
    this.cache.forget(id);
  }
}

/** {@link ServerGroupStore} on SQL. */
export class SqlServerGroupStore implements ServerGroupStore {
  private readonly getStmt;
  private readonly setDataStmt;
  constructor(private readonly database: SqlDatabase) {
    this.getStmt = byId(database, 'server_groups');
    this.setDataStmt = PreparedStatement.of<{ id: string; data: string }>((p) =>
      database.db
        .updateTable('server_groups')
        .set({ data: p('data') })
        .where('id', '=', p('id')),
    );
  }
  /** The statement reading a group's JSON (`data`; no row if it is gone), for a unit of work. */
  getStatement(id: string): BoundStatement {
    return this.getStmt.bind({ id });
  }
  /** The statement replacing a group's JSON with `group` (members included), for a unit of work. */
  setStatement(group: ServerGroup): BoundStatement {
    return this.setDataStmt.bind({ id: group.id, data: JSON.stringify(group) });
  }
  async get(id: string): Promise<ServerGroup | undefined> {
    const [row] = (await this.database.exec.run<{ data: string }>(this.getStmt.bind({ id }))).rows;
    return row ? (JSON.parse(row.data) as ServerGroup) : undefined;
  }
  async list(projectId?: string): Promise<ServerGroup[]> {
    let q = this.database.db.selectFrom('server_groups').select('data');
    if (projectId !== undefined) q = q.where('project_id', '=', projectId);
    return (await rowsOf<{ data: string }>(this.database, q)).map((r) => JSON.parse(r.data) as ServerGroup);
  }
  async add(group: ServerGroup): Promise<void> {
    try {
      await this.database.exec.run(
        this.database.db
          .insertInto('server_groups')
          .values({ id: group.id, project_id: group.projectId, data: JSON.stringify(group) })
          .compile(),
      );
    } catch (e) {
      if (isDuplicate(e)) throw new DuplicateError('serverGroup', group.id);
      throw e;
    }
  }
  async remove(id: string): Promise<void> {
    await this.database.exec.run(this.database.db.deleteFrom('server_groups').where('id', '=', id).compile());
  }
  async addMembers(id: string, instanceIds: readonly string[]): Promise<void> {
    await this.modify(
      id,
      (g) => ({ ...g, members: [...g.members, ...instanceIds.filter((i) => !g.members.includes(i))] }),
      true,
    );
  }
  async removeMember(id: string, instanceId: string): Promise<void> {
    await this.modify(id, (g) => ({ ...g, members: g.members.filter((m) => m !== instanceId) }), false);
  }
  private async modify(
    id: string,
    change: (g: ServerGroup) => ServerGroup,
    mustExist: boolean,
  ): Promise<void> {
    const { db } = this.database;
    await this.database.exec.unit(async (tx) => {
      let q = db.selectFrom('server_groups').select('data').where('id', '=', id);
      if (this.database.dialect === 'postgres') q = q.forUpdate();
      const [row] = (await tx.run<{ data: string }>(q.compile())).rows;
      if (!row) {
        if (mustExist) throw new NotFoundError('serverGroup', id);
        return;
      }
      const next = change(JSON.parse(row.data) as ServerGroup);
      await tx.run(
        db
          .updateTable('server_groups')
          .set({ data: JSON.stringify(next) })
          .where('id', '=', id)
          .compile(),
      );
    });
  }
}
