import { z } from 'zod';
import { ApiFault } from '../http/api-fault.js';
import type { ApiServices } from '../http/api-services.js';
import { type RouteSpec, route } from '../http/route.js';
import { identityName } from './auth-request.js';
import {
  authorize,
  boolQuery,
  callerOf,
  collectionLinks,
  defaultDomainOf,
  descriptionText,
  domainTarget,
  domainView,
  filterText,
  notFoundFault,
  plausibleId,
  policyTarget,
  projectTarget,
  projectView,
} from './identity-route-common.js';
import type { IdentityService } from './identity-service.js';
import type { Project } from './project-store.js';

/** Keystone's project names: 1-64 characters. */
const projectName = identityName(64);

const createBody = z.object({
  project: z.object({
    name: projectName,
    domain_id: identityName(64).nullable().optional(),
    description: descriptionText.nullable().optional(),
    enabled: z.boolean().optional(),
    is_domain: z.boolean().optional(),
    parent_id: identityName(64).nullable().optional(),
    tags: z.array(z.string().max(255)).max(0, 'project tags are not supported').optional(),
  }),
});

const updateBody = z.object({
  project: z.object({
    name: projectName.optional(),
    description: descriptionText.nullable().optional(),
    enabled: z.boolean().optional(),
  }),
});

const listQuery = z.object({
  name: filterText.optional(),
  domain_id: filterText.optional(),
  enabled: boolQuery.optional(),
});

const projectParams = z.object({ projectId: z.string() });
const domainParams = z.object({ domainId: z.string() });

/** `/v3/projects` and `/v3/domains` (list, show; projects also create, update, delete). */
export function projectRoutes(services: ApiServices, identity: IdentityService): RouteSpec[] {
  const find = async (id: string): Promise<Project | undefined> =>
    plausibleId(id) ? identity.projects.get({ id }) : undefined;

  return [
    route({
      method: 'GET',
      url: '/v3/projects',
      service: 'identity',
      summary: 'List projects (filters: name, domain_id, enabled)',
      rules: ['identity:list_projects'],
      query: listQuery,
      handler: async ({ auth, query, request }) => {
        const caller = callerOf(auth);
        authorize(services, 'identity:list_projects', caller, { 'target.domain_id': query.domain_id });
        const projects = await identity.projects.list({
          ...(query.name !== undefined ? { name: query.name } : {}),
          ...(query.domain_id !== undefined ? { domainId: query.domain_id } : {}),
          ...(query.enabled !== undefined ? { enabled: query.enabled } : {}),
        });
        return {
          status: 200,
          body: {
            projects: projects.map((p) => projectView(services, p)),
            links: collectionLinks(services, request),
          },
        };
      },
    }),
    route({
      method: 'POST',
      url: '/v3/projects',
      service: 'identity',
      summary: 'Create a project',
      rules: ['identity:create_project'],
      body: createBody,
      handler: async ({ auth, body }) => {
        const caller = callerOf(auth);
        const p = body.project;
        const domainId = p.domain_id ?? defaultDomainOf(caller);
        authorize(
          services,
          'identity:create_project',
          caller,
          policyTarget({ project: { domain_id: domainId } }),
        );
        if (p.is_domain)
          throw new ApiFault(400, 'Projects acting as domains are not supported.', {
            field: 'body.project.is_domain',
          });
        if (p.parent_id && p.parent_id !== domainId)
          throw new ApiFault(400, 'Nested projects are not supported: parent_id must be the domain.', {
            field: 'body.project.parent_id',
          });
        const domain = await identity.projects.domain({ id: domainId });
        if (!domain) throw notFoundFault('domain', domainId);
        const project = await identity.createProject({
          name: p.name,
          domainId,
          description: p.description ?? '',
          enabled: p.enabled ?? true,
        });
        return { status: 201, body: { project: projectView(services, project) } };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/projects/:projectId',
      service: 'identity',
      summary: 'Show a project',
      rules: ['identity:get_project'],
      params: projectParams,
      handler: async ({ auth, params }) => {
        const caller = callerOf(auth);
        const project = await find(params.projectId);
        authorize(
          services,
          'identity:get_project',
          caller,
          policyTarget({ project: projectTarget(project) }),
        );
        if (!project) throw notFoundFault('project', params.projectId);
        return { status: 200, body: { project: projectView(services, project) } };
      },
    }),
    route({
      method: 'PATCH',
      url: '/v3/projects/:projectId',
      service: 'identity',
      summary: 'Update a project',
      rules: ['identity:update_project'],
      params: projectParams,
      body: updateBody,
      handler: async ({ auth, params, body }) => {
        const caller = callerOf(auth);
        const project = await find(params.projectId);
        authorize(
          services,
          'identity:update_project',
          caller,
          policyTarget({ project: projectTarget(project) }),
        );
        if (!project) throw notFoundFault('project', params.projectId);
        const p = body.project;
        const updated = await identity.updateProject(project.id, {
          ...(p.name !== undefined ? { name: p.name } : {}),
          ...(p.description !== undefined ? { description: p.description ?? '' } : {}),
          ...(p.enabled !== undefined ? { enabled: p.enabled } : {}),
        });
        if (!updated) throw notFoundFault('project', params.projectId);
        return { status: 200, body: { project: projectView(services, updated) } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v3/projects/:projectId',
      service: 'identity',
      summary: 'Delete a project (and its role assignments)',
      rules: ['identity:delete_project'],
      params: projectParams,
      handler: async ({ auth, params }) => {
        const caller = callerOf(auth);
        const project = await find(params.projectId);
        authorize(
          services,
          'identity:delete_project',
          caller,
          policyTarget({ project: projectTarget(project) }),
        );
        if (!project || !(await identity.deleteProject(project.id)))
          throw notFoundFault('project', params.projectId);
        return { status: 204 };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/domains',
      service: 'identity',
      summary: 'List domains (filters: name, enabled)',
      rules: ['identity:list_domains'],
      query: z.object({ name: filterText.optional(), enabled: boolQuery.optional() }),
      handler: async ({ auth, query, request }) => {
        const caller = callerOf(auth);
        authorize(services, 'identity:list_domains', caller);
        const domains = await identity.projects.domains({
          ...(query.name !== undefined ? { name: query.name } : {}),
          ...(query.enabled !== undefined ? { enabled: query.enabled } : {}),
        });
        return {
          status: 200,
          body: {
            domains: domains.map((d) => domainView(services, d)),
            links: collectionLinks(services, request),
          },
        };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/domains/:domainId',
      service: 'identity',
      summary: 'Show a domain',
      rules: ['identity:get_domain'],
      params: domainParams,
      handler: async ({ auth, params }) => {
        const caller = callerOf(auth);
        const domain = plausibleId(params.domainId)
          ? await identity.projects.domain({ id: params.domainId })
          : undefined;
        authorize(services, 'identity:get_domain', caller, policyTarget({ domain: domainTarget(domain) }));
        if (!domain) throw notFoundFault('domain', params.domainId);
        return { status: 200, body: { domain: domainView(services, domain) } };
      },
    }),
  ];
}
