import { ConfigurationError, DuplicateError } from '@nova-lfs/core';
import type { Kysely } from 'kysely';
import type { DomainRow, IdentityTables, ProjectRow } from './identity-tables.js';
import { newIdentityId } from './sql-backend.js';

/** A domain as the identity service uses it. */
export interface Domain {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly enabled: boolean;
}

/** A project as the identity service uses it. */
export interface Project {
  readonly id: string;
  readonly name: string;
  readonly domainId: string;
  readonly description: string;
  readonly enabled: boolean;
}

/** A new project. */
export interface NewProject {
  readonly name: string;
  readonly domainId: string;
  readonly description?: string;
  readonly enabled?: boolean;
}

/** Changes to a project. */
export interface ProjectChanges {
  readonly name?: string;
  readonly description?: string;
  readonly enabled?: boolean;
}

/** Filters of {@link ProjectStore.list}. */
export interface ProjectFilter {
  readonly name?: string;
  readonly domainId?: string;
  readonly enabled?: boolean;
  /** Only these ids. */
  readonly ids?: readonly string[];
}

const domainOf = (r: DomainRow): Domain => ({
  id: r.id,
  name: r.name,
  description: r.description,
  enabled: Number(r.enabled) === 1,
});

const projectOf = (r: ProjectRow): Project => ({
  id: r.id,
  name: r.name,
  domainId: r.domain_id,
  description: r.description,
  enabled: Number(r.enabled) === 1,
});

/**
 * Projects and domains in `identity_project` and `identity_domain` (always SQL, whatever the
 * identity backend). A project name is unique within its domain: a taken one is refused with
 * core's `DuplicateError` (kind `project`).
 */
export class ProjectStore {
  constructor(
    private readonly db: Kysely<IdentityTables>,
    private readonly clock: () => number,
  ) {}

  async domain(ref: { readonly id: string } | { readonly name: string }): Promise<Domain | undefined> {
    const q = this.db.selectFrom('identity_domain').selectAll();
    const row = await ('id' in ref
      ? q.where('id', '=', ref.id)
      : q.where('name', '=', ref.name)
    ).executeTakeFirst();
    return row ? domainOf(row) : undefined;
  }

  /**
   * Creates the domain `id` named `name` unless it exists (a start with a directory domain; safe
   * when several processes start at once). An existing domain keeps its description and enabled
   * flag.
   * @throws ConfigurationError (setting `identity.directories`) when domain `id` has another name,
   *   or `name` belongs to another domain
   */
  async ensureDomain(id: string, name: string, description: string): Promise<Domain> {
    await this.db
      .insertInto('identity_domain')
      .values({ id, name, description, enabled: 1 })
      .onConflict((oc) => oc.doNothing())
      .execute();
    const domain = await this.domain({ id });
    if (domain?.name !== name) {
      const holder = domain ? `domain ${id} is named "${domain.name}"` : `the name belongs to another domain`;
      throw new ConfigurationError(
        'identity.directories',
        `cannot use domain ${id} named "${name}" for a directory: ${holder}`,
      );
    }
    return domain;
  }

  async domains(filter: { readonly name?: string; readonly enabled?: boolean } = {}): Promise<Domain[]> {
    let q = this.db.selectFrom('identity_domain').selectAll();
    if (filter.name !== undefined) q = q.where('name', '=', filter.name);
    if (filter.enabled !== undefined) q = q.where('enabled', '=', filter.enabled ? 1 : 0);
    return (await q.orderBy('name').execute()).map(domainOf);
  }

  async get(
    ref: { readonly id: string } | { readonly name: string; readonly domainId: string },
  ): Promise<Project | undefined> {
    const q = this.db.selectFrom('identity_project').selectAll();
    const row = await ('id' in ref
      ? q.where('id', '=', ref.id)
      : q.where('name', '=', ref.name).where('domain_id', '=', ref.domainId)
    ).executeTakeFirst();
    return row ? projectOf(row) : undefined;
  }

  async list(filter: ProjectFilter = {}): Promise<Project[]> {
    if (filter.ids && filter.ids.length === 0) return [];
    let q = this.db.selectFrom('identity_project').selectAll();
    if (filter.name !== undefined) q = q.where('name', '=', filter.name);
    if (filter.domainId !== undefined) q = q.where('domain_id', '=', filter.domainId);
    if (filter.enabled !== undefined) q = q.where('enabled', '=', filter.enabled ? 1 : 0);
    if (filter.ids) q = q.where('id', 'in', [...filter.ids]);
    return (await q.orderBy('name').orderBy('id').execute()).map(projectOf);
  }

  async create(project: NewProject): Promise<Project> {
    await this.refuseTaken(project.name, project.domainId);
    const row: ProjectRow = {
      id: newIdentityId(),
      name: project.name,
      domain_id: project.domainId,
      description: project.description ?? '',
      enabled: project.enabled === false ? 0 : 1,
      created_at: this.clock(),
    };
    try {
      await this.db.insertInto('identity_project').values(row).execute();
    } catch (e) {
      await this.refuseTaken(project.name, project.domainId);
      throw e;
    }
    return projectOf(row);
  }

  /**
   * Creates the project unless one of that name exists in the domain (bootstrap; safe when
   * several processes start at once).
   */
  async ensure(name: string, domainId: string, description: string): Promise<Project> {
    await this.db
      .insertInto('identity_project')
      .values({
        id: newIdentityId(),
        name,
        domain_id: domainId,
        description,
        enabled: 1,
        created_at: this.clock(),
      })
      .onConflict((oc) => oc.columns(['domain_id', 'name']).doNothing())
      .execute();
    return (await this.get({ name, domainId }))!;
  }

  async update(id: string, changes: ProjectChanges): Promise<Project | undefined> {
    const current = await this.db
      .selectFrom('identity_project')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!current) return undefined;
    const set: Partial<ProjectRow> = {};
    if (changes.name !== undefined && changes.name !== current.name) {
      await this.refuseTaken(changes.name, current.domain_id);
      set.name = changes.name;
    }
    if (changes.description !== undefined) set.description = changes.description;
    if (changes.enabled !== undefined) set.enabled = changes.enabled ? 1 : 0;
    if (Object.keys(set).length > 0)
      await this.db.updateTable('identity_project').set(set).where('id', '=', id).execute();
    return projectOf({ ...current, ...set });
  }

  /** Deletes the project and every role assignment on it; `false` if there was none. */
  async delete(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      await tx
        .deleteFrom('identity_assignment')
        .where('target_type', '=', 'project')
        .where('target_id', '=', id)
        .execute();
      const r = await tx.deleteFrom('identity_project').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  private async refuseTaken(name: string, domainId: string): Promise<void> {
    const taken = await this.db
      .selectFrom('identity_project')
      .select('id')
      .where('name', '=', name)
      .where('domain_id', '=', domainId)
      .executeTakeFirst();
    if (taken) throw new DuplicateError('project', name);
  }
}
