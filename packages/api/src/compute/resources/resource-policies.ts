import type { PolicyRuleDefault } from '../../policy/policy-engine.js';

const admin = 'rule:context_is_admin';
const member = 'rule:project_member_or_admin';
const reader = 'rule:project_reader_or_admin';

function rules(entries: Record<string, [string, string]>): Record<string, PolicyRuleDefault> {
  const out: Record<string, PolicyRuleDefault> = {};
  for (const [name, [check, description]] of Object.entries(entries)) out[name] = { check, description };
  return out;
}

/** Nova's default rules (Zed, new defaults) for the routes of this module. */
export const computeResourcePolicies: Readonly<Record<string, PolicyRuleDefault>> = rules({
  'os_compute_api:os-flavor-manage:create': [admin, 'Create a flavor.'],
  'os_compute_api:os-flavor-manage:update': [admin, 'Update a flavor.'],
  'os_compute_api:os-flavor-manage:delete': [admin, 'Delete a flavor.'],
  'os_compute_api:os-flavor-access': [admin, 'List the projects that may use a private flavor.'],
  'os_compute_api:os-flavor-access:add_tenant_access': [admin, 'Let a project use a private flavor.'],
  'os_compute_api:os-flavor-access:remove_tenant_access': [admin, 'Stop a project using a private flavor.'],
  'os_compute_api:os-flavor-extra-specs:index': ['@', 'List the extra specs of a flavor.'],
  'os_compute_api:os-flavor-extra-specs:show': ['@', 'Show one extra spec of a flavor.'],
  'os_compute_api:os-flavor-extra-specs:create': [admin, 'Create or merge extra specs of a flavor.'],
  'os_compute_api:os-flavor-extra-specs:update': [admin, 'Update one extra spec of a flavor.'],
  'os_compute_api:os-flavor-extra-specs:delete': [admin, 'Delete one extra spec of a flavor.'],
  'os_compute_api:os-hypervisors:list': [admin, 'List hypervisors.'],
  'os_compute_api:os-hypervisors:list-detail': [admin, 'List hypervisors with details.'],
  'os_compute_api:os-hypervisors:show': [admin, 'Show a hypervisor.'],
  'os_compute_api:os-hypervisors:uptime': [admin, 'Show the uptime of a hypervisor.'],
  'os_compute_api:os-hypervisors:statistics': [admin, 'Sum the capacity and usage of every hypervisor.'],
  'os_compute_api:os-hypervisors:search': [admin, 'Find hypervisors by hostname.'],
  'os_compute_api:os-hypervisors:servers': [admin, 'List the servers of hypervisors found by hostname.'],
  'os_compute_api:os-aggregates:index': [admin, 'List aggregates.'],
  'os_compute_api:os-aggregates:create': [admin, 'Create an aggregate.'],
  'os_compute_api:os-aggregates:show': [admin, 'Show an aggregate.'],
  'os_compute_api:os-aggregates:update': [admin, 'Update an aggregate.'],
  'os_compute_api:os-aggregates:delete': [admin, 'Delete an aggregate.'],
  'os_compute_api:os-aggregates:add_host': [admin, 'Add a host to an aggregate.'],
  'os_compute_api:os-aggregates:remove_host': [admin, 'Remove a host from an aggregate.'],
  'os_compute_api:os-aggregates:set_metadata': [admin, 'Set the metadata of an aggregate.'],
  'os_compute_api:os-availability-zone:list': ['@', 'List availability zones.'],
  'os_compute_api:os-availability-zone:detail': [admin, 'List availability zones with hosts.'],
  'os_compute_api:os-server-groups:create': [member, 'Create a server group.'],
  'os_compute_api:os-server-groups:index': [reader, 'List server groups.'],
  'os_compute_api:os-server-groups:index:all_projects': [admin, 'List every project’s server groups.'],
  'os_compute_api:os-server-groups:show': [reader, 'Show a server group.'],
  'os_compute_api:os-server-groups:delete': [member, 'Delete a server group.'],
  'os_compute_api:os-quota-sets:show': [reader, 'Show a project’s quota.'],
  'os_compute_api:os-quota-sets:update': [admin, 'Update a project’s quota.'],
  'os_compute_api:os-quota-sets:defaults': ['@', 'Show the default quota.'],
  'os_compute_api:os-quota-sets:delete': [admin, 'Revert a project’s quota to the defaults.'],
  'os_compute_api:os-quota-sets:detail': [reader, 'Show a project’s quota with usage.'],
  'os_compute_api:limits': ['@', 'Show the caller’s limits.'],
  'os_compute_api:limits:other_project': [admin, 'Show another project’s limits.'],
  'os_compute_api:os-services:list': [admin, 'List compute services.'],
  'os_compute_api:os-services:update': [admin, 'Enable, disable or force down a compute service.'],
  'os_compute_api:os-services:delete': [admin, 'Delete a compute service.'],
  'os_compute_api:os-keypairs:index': ['(rule:context_is_admin) or user_id:%(user_id)s', 'List key pairs.'],
  'os_compute_api:os-keypairs:create': [
    '(rule:context_is_admin) or user_id:%(user_id)s',
    'Create a key pair.',
  ],
  'os_compute_api:os-keypairs:show': ['(rule:context_is_admin) or user_id:%(user_id)s', 'Show a key pair.'],
  'os_compute_api:os-keypairs:delete': [
    '(rule:context_is_admin) or user_id:%(user_id)s',
    'Delete a key pair.',
  ],
});
