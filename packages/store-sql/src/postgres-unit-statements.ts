import type { Instance } from '@nova-lfs/core';
import { sql } from 'kysely';
import type { SqlDatabase } from './database.js';
import { type InstanceRow, instanceRow } from './sql-instance-store.js';
import { type BoundStatement, PreparedStatement } from './statement.js';

/** SQLSTATEs the precondition functions of migration `0003_units_and_paging` raise (`nlfs_expect` takes any). */
export const PreconditionState = {
  /** An instance's revision is not the expected one. DETAIL: `{ kind, id, expected, actual }`. */
  RevisionConflict: 'NLF01',
  /** The record is gone. DETAIL: `{ kind, id }`. */
  NotFound: 'NLF02',
  /** The id exists already. DETAIL: `{ kind, id }`. */
  Duplicate: 'NLF03',
  /** A unit's quota consumption does not fit the project's limits. DETAIL: `{ kind: 'quota', id: projectId }`. */
  QuotaRefused: 'NLF04',
} as const;

/**
 * The PostgreSQL statements of a unit of work whose precondition is checked inside SQL: each
 * writes in a data-modifying CTE and passes how many rows it changed to a function that raises
 * (a {@link PreconditionState}) when it changed none. The raise aborts the transaction, so a
 * unit sent as one batch of statements (`SqlExecutor.runAll`) commits all of them or none, with
 * no round trip back to JavaScript between a write and its check.
 */
export class PostgresUnitStatements {
  private readonly insertStmt;
  private readonly updateStmt;
  private readonly addMembersStmt;
  private readonly removeMemberStmt;
  private readonly removeStmt;

  constructor(database: SqlDatabase) {
    const { db } = database;
    const compiled = <P extends Record<string, unknown>>(
      build: (p: <K extends keyof P & string>(name: K) => P[K]) => import('kysely').RawBuilder<unknown>,
    ) => PreparedStatement.of<P>((p) => ({ compile: () => build(p).compile(db) }));
    this.insertStmt = compiled<InstanceRow>(
      (p) => sql`with inserted as (
          insert into instances
            (id, project_id, host_id, task_state, vm_state, name, created_at, updated_at, revision, data)
          values (${p('id')}, ${p('projectId')}, ${p('hostId')}, ${p('taskState')}, ${p('vmState')},
            ${p('name')}, ${p('createdAt')}, ${p('updatedAt')}, ${p('revision')}, ${p('data')})
          on conflict (id) do nothing
          returning 1)
        select nlfs_expect((select count(*) from inserted), ${PreconditionState.Duplicate}, 'instance', ${p('id')})`,
    );
    this.updateStmt = compiled<InstanceRow & { expected: number }>(
      (p) => sql`with updated as (
          update instances set data = ${p('data')}, revision = ${p('revision')}, host_id = ${p('hostId')},
            task_state = ${p('taskState')}, vm_state = ${p('vmState')}, name = ${p('name')},
            updated_at = ${p('updatedAt')}
          where id = ${p('id')} and revision = ${p('expected')}
          returning 1)
        select nlfs_expect_revision((select count(*) from updated), ${p('id')}, ${p('expected')})`,
    );
    this.removeStmt = compiled<{ id: string; expected: number }>(
      (p) => sql`with deleted as (
          delete from instances where id = ${p('id')} and revision = ${p('expected')}
          returning 1)
        select nlfs_expect_revision((select count(*) from deleted), ${p('id')}, ${p('expected')})`,
    );
    // members appended in the given order, each once; the group's row lock orders concurrent units
    this.addMembersStmt = compiled<{ groupId: string; instanceIds: string }>(
      (p) => sql`with updated as (
          update server_groups g set data = jsonb_set(g.data::jsonb, '{members}',
            coalesce(g.data::jsonb->'members', '[]'::jsonb) || coalesce((
              select jsonb_agg(n.m order by n.o) from (
                select a.m, min(a.o) as o
                from json_array_elements_text(${p('instanceIds')}::json) with ordinality as a(m, o)
                where not exists (
                  select 1 from jsonb_array_elements_text(coalesce(g.data::jsonb->'members', '[]'::jsonb)) as x(m)
                  where x.m = a.m)
                group by a.m) n), '[]'::jsonb))::text
          where g.id = ${p('groupId')}
          returning 1)
        select nlfs_expect((select count(*) from updated), ${PreconditionState.NotFound}, 'serverGroup', ${p('groupId')})`,
    );
    this.removeMemberStmt = compiled<{ groupId: string; instanceId: string }>(
      (p) => sql`update server_groups g set data = jsonb_set(g.data::jsonb, '{members}', coalesce((
          select jsonb_agg(x.m order by x.o)
          from jsonb_array_elements_text(g.data::jsonb->'members') with ordinality as x(m, o)
          where x.m <> ${p('instanceId')}), '[]'::jsonb))::text
        where g.id = ${p('groupId')} and exists (
          select 1 from jsonb_array_elements_text(g.data::jsonb->'members') as y(m) where y.m = ${p('instanceId')})`,
    );
  }

  /** Inserts the record; raises `NLF03` if the id exists. */
  insertInstance(instance: Instance): BoundStatement {
    return this.insertStmt.bind(instanceRow(instance));
  }

  /** Replaces the record if its revision is `expected`; raises `NLF01` (or `NLF02` if it is gone). */
  updateInstance(instance: Instance, expected: number): BoundStatement {
    return this.updateStmt.bind({ ...instanceRow(instance), expected });
  }

  /** Removes the record if its revision is `expected`; raises `NLF01` (or `NLF02` if it is gone). */
  removeInstance(id: string, expected: number): BoundStatement {
    return this.removeStmt.bind({ id, expected });
  }

  /** Adds members to a server group (each once); raises `NLF02` if the group is gone. */
  addMembers(groupId: string, instanceIds: readonly string[]): BoundStatement {
    return this.addMembersStmt.bind({ groupId, instanceIds: JSON.stringify(instanceIds) });
  }

  /** Removes a member (idempotent, also when the group is gone). */
  removeMember(groupId: string, instanceId: string): BoundStatement {
    return this.removeMemberStmt.bind({ groupId, instanceId });
  }
}
