import { type PolicyRuleDefault, policyDefaults as rules } from '../../policy/policy-engine.js';

const admin = 'rule:context_is_admin';
const member = 'rule:project_member_or_admin';
const reader = 'rule:project_reader_or_admin';

/** Nova's default rules (Zed, new defaults) for servers, their actions, metadata and events. */
export const serverPolicies: Readonly<Record<string, PolicyRuleDefault>> = rules({
  'os_compute_api:servers:index': ['rule:project_reader_api', 'List servers of the project.'],
  'os_compute_api:servers:detail': ['rule:project_reader_api', 'List servers of the project with details.'],
  'os_compute_api:servers:index:get_all_tenants': [admin, 'List servers of every project.'],
  'os_compute_api:servers:detail:get_all_tenants': [admin, 'List servers of every project with details.'],
  'os_compute_api:servers:allow_all_filters': [admin, 'Filter servers by host and other admin-only fields.'],
  'os_compute_api:servers:show': [reader, 'Show a server.'],
  'os_compute_api:servers:show:host_status': [admin, 'See the state of the host of a server.'],
  'os_compute_api:os-extended-server-attributes': [admin, 'See the host and hypervisor of a server.'],
  'os_compute_api:servers:create': ['rule:project_member_api', 'Create servers.'],
  'os_compute_api:servers:create:forced_host': [admin, 'Create a server on a named host.'],
  'os_compute_api:servers:update': [member, 'Rename a server or change its description.'],
  'os_compute_api:servers:delete': [member, 'Delete a server.'],
  'os_compute_api:servers:reboot': [member, 'Reboot a server.'],
  'os_compute_api:servers:start': [member, 'Start a server.'],
  'os_compute_api:servers:stop': [member, 'Stop a server.'],
  'os_compute_api:servers:rebuild': [member, 'Rebuild a server.'],
  'os_compute_api:servers:create_image': [member, 'Snapshot a server into an image.'],
  'os_compute_api:os-pause-server:pause': [member, 'Pause a server.'],
  'os_compute_api:os-pause-server:unpause': [member, 'Unpause a server.'],
  'os_compute_api:os-suspend-server:suspend': [member, 'Suspend a server.'],
  'os_compute_api:os-suspend-server:resume': [member, 'Resume a server.'],
  'os_compute_api:os-console-output': [member, 'Read the console output of a server.'],
  'os_compute_api:os-evacuate': [admin, 'Rebuild a server of a down host on another host.'],
  'os_compute_api:os-instance-actions:list': [reader, 'List the actions of a server.'],
  'os_compute_api:os-instance-actions:show': [reader, 'Show an action of a server.'],
  'os_compute_api:os-instance-actions:events': [admin, 'See the events of an action.'],
  'os_compute_api:os-instance-actions:events:details': [admin, 'See the hosts and details of action events.'],
  'os_compute_api:server-metadata:index': [reader, 'List the metadata of a server.'],
  'os_compute_api:server-metadata:show': [reader, 'Show one metadata item of a server.'],
  'os_compute_api:server-metadata:create': [member, 'Add metadata items to a server.'],
  'os_compute_api:server-metadata:update': [member, 'Set one metadata item of a server.'],
  'os_compute_api:server-metadata:update_all': [member, 'Replace the metadata of a server.'],
  'os_compute_api:server-metadata:delete': [member, 'Delete one metadata item of a server.'],
  'nova_lfs:events:stream': [
    'rule:project_reader_api or rule:context_is_admin',
    'Follow the live event stream of the project (admins: every project).',
  ],
});
