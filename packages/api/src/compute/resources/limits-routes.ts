import { z } from 'zod';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { atLeast } from '../microversion.js';
import { quotaSnapshot } from './quota-sets-routes.js';
import { beginCompute, callerOf } from './resource-common.js';

const limitsQuery = z.object({
  tenant_id: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'must be a project id')
    .optional(),
  reserved: z.string().max(16).optional(),
});

/**
 * `GET /limits`: the caller's project's absolute limits and usage (another project's with
 * `tenant_id`, admin only). Network limits are gone from 2.36, `maxImageMeta` from 2.39 and the
 * personality limits from 2.57, as in Nova; there are no rate limits.
 */
export function limitRoutes(services: ApiServices): RouteSpec[] {
  return [
    route({
      method: 'GET',
      url: '/v2.1/limits',
      service: 'compute',
      summary: 'Show the caller’s limits',
      rules: ['os_compute_api:limits', 'os_compute_api:limits:other_project'],
      query: limitsQuery,
      handler: async ({ request, reply, auth, query }) => {
        const v = beginCompute(request, reply);
        const caller = callerOf(auth);
        services.policy.authorize('os_compute_api:limits', caller);
        const projectId = query.tenant_id ?? caller.projectId ?? '';
        if (projectId !== caller.projectId)
          services.policy.authorize('os_compute_api:limits:other_project', caller, { project_id: projectId });
        const q = await quotaSnapshot(services, projectId);
        const used = (k: string) => (q.inUse[k] ?? 0) + (q.reserved[k] ?? 0);
        const absolute: Record<string, number> = {
          maxTotalInstances: q.limits.instances!,
          maxTotalCores: q.limits.cores!,
          maxTotalRAMSize: q.limits.ram!,
          maxServerMeta: q.limits.metadata_items!,
        };
        if (!atLeast(v, 39)) absolute.maxImageMeta = q.limits.metadata_items!;
        if (!atLeast(v, 57)) {
          absolute.maxPersonality = q.limits.injected_files!;
          absolute.maxPersonalitySize = q.limits.injected_file_content_bytes!;
        }
        Object.assign(absolute, {
          maxTotalKeypairs: q.limits.key_pairs,
          maxServerGroups: q.limits.server_groups,
          maxServerGroupMembers: q.limits.server_group_members,
        });
        if (!atLeast(v, 36))
          Object.assign(absolute, {
            maxSecurityGroups: q.limits.security_groups,
            maxSecurityGroupRules: q.limits.security_group_rules,
            maxTotalFloatingIps: q.limits.floating_ips,
            totalFloatingIpsUsed: 0,
            totalSecurityGroupsUsed: 0,
          });
        Object.assign(absolute, {
          totalRAMUsed: used('ram'),
          totalCoresUsed: used('cores'),
          totalInstancesUsed: used('instances'),
          totalServerGroupsUsed: used('server_groups'),
        });
        return { status: 200, body: { limits: { rate: [], absolute } } };
      },
    }),
  ];
}
