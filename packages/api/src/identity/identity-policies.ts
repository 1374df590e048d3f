import { type PolicyRuleDefault, policyDefaults as rules } from '../policy/policy-engine.js';

/**
 * Keystone's current default rules (its `keystone/common/policies`, check strings unchanged) for
 * the routes of the identity module, with its base rules (`admin_required`, `token_subject`, ...).
 * The base rules `owner` and `admin_or_owner`, which Nova's defaults define the same way, are
 * not repeated. Checks naming the `manager` or `service` role are kept as Keystone has them;
 * this cloud's bootstrap makes neither role.
 */
export const identityPolicies: Readonly<Record<string, PolicyRuleDefault>> = rules({
  admin_required: ['role:admin or is_admin:1', 'Base rule admin required.'],
  service_role: ['role:service', 'Base rule service role.'],
  service_or_admin: ['rule:admin_required or rule:service_role', 'Base rule service or admin.'],
  token_subject: ['user_id:%(target.token.user_id)s', 'Base rule token subject.'],
  admin_or_token_subject: ['rule:admin_required or rule:token_subject', 'Base rule admin or token subject.'],
  service_admin_or_token_subject: [
    'rule:service_or_admin or rule:token_subject',
    'Base rule service admin or token subject.',
  ],
  domain_managed_target_role: [
    "'manager':%(target.role.name)s or 'member':%(target.role.name)s or 'reader':%(target.role.name)s",
    'Base rule domain managed target role.',
  ],
  'identity:get_auth_catalog': ['', 'Get auth catalog.'],
  'identity:get_auth_projects': ['', 'Get auth projects.'],
  'identity:get_auth_domains': ['', 'Get auth domains.'],
  'identity:get_auth_system': ['', 'Get auth system.'],
  'identity:check_token': [
    'rule:admin_required or (role:reader and system_scope:all) or rule:token_subject',
    'Check token.',
  ],
  'identity:validate_token': [
    'rule:admin_required or (role:reader and system_scope:all) or rule:service_role or rule:token_subject',
    'Validate token.',
  ],
  'identity:revoke_token': ['rule:admin_required or rule:token_subject', 'Revoke token.'],
  'identity:get_user': [
    '(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and token.domain.id:%(target.user.domain_id)s) or user_id:%(target.user.id)s',
    'Get user.',
  ],
  'identity:list_users': [
    '(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)',
    'List users.',
  ],
  'identity:create_user': [
    '(rule:admin_required) or (role:manager and token.domain.id:%(target.user.domain_id)s)',
    'Create user.',
  ],
  'identity:update_user': [
    '(rule:admin_required) or (role:manager and token.domain.id:%(target.user.domain_id)s)',
    'Update user.',
  ],
  'identity:delete_user': [
    '(rule:admin_required) or (role:manager and token.domain.id:%(target.user.domain_id)s)',
    'Delete user.',
  ],
  'identity:get_project': [
    '(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s) or project_id:%(target.project.id)s',
    'Get project.',
  ],
  'identity:list_projects': [
    '(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)',
    'List projects.',
  ],
  'identity:list_user_projects': [
    '(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.user.domain_id)s) or user_id:%(target.user.id)s',
    'List user projects.',
  ],
  'identity:create_project': [
    '(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)',
    'Create project.',
  ],
  'identity:update_project': [
    '(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)',
    'Update project.',
  ],
  'identity:delete_project': [
    '(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)',
    'Delete project.',
  ],
  'identity:get_group': [
    '(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s)',
    'Get group.',
  ],
  'identity:list_groups': [
    '(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s)',
    'List groups.',
  ],
  'identity:list_groups_for_user': [
    '(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.user.domain_id)s) or user_id:%(user_id)s',
    'List groups for user.',
  ],
  'identity:create_group': [
    '(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s)',
    'Create group.',
  ],
  'identity:update_group': [
    '(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s)',
    'Update group.',
  ],
  'identity:delete_group': [
    '(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s)',
    'Delete group.',
  ],
  'identity:list_users_in_group': [
    '(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s)',
    'List users in group.',
  ],
  'identity:remove_user_from_group': [
    '(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)',
    'Remove user from group.',
  ],
  'identity:check_user_in_group': [
    '(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)',
    'Check user in group.',
  ],
  'identity:add_user_to_group': [
    '(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)',
    'Add user to group.',
  ],
  'identity:get_role': [
    '(rule:admin_required or (role:reader and system_scope:all)) or (role:manager and rule:domain_managed_target_role)',
    'Get role.',
  ],
  'identity:list_roles': [
    '(rule:admin_required or (role:reader and system_scope:all)) or (role:manager and not domain_id:None)',
    'List roles.',
  ],
  'identity:create_role': ['rule:admin_required', 'Create role.'],
  'identity:update_role': ['rule:admin_required', 'Update role.'],
  'identity:delete_role': ['rule:admin_required', 'Delete role.'],
  'identity:check_grant': [
    '(rule:admin_required) or ((role:reader and system_scope:all) or ((role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s or None:%(target.role.domain_id)s))',
    'Check grant.',
  ],
  'identity:list_grants': [
    '(rule:admin_required) or ((role:reader and system_scope:all) or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s))',
    'List grants.',
  ],
  'identity:create_grant': [
    '(rule:admin_required) or ((role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s or None:%(target.role.domain_id)s) or ((role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and rule:domain_managed_target_role',
    'Create grant.',
  ],
  'identity:revoke_grant': [
    '(rule:admin_required) or ((role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s or None:%(target.role.domain_id)s) or ((role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and rule:domain_managed_target_role',
    'Revoke grant.',
  ],
  'identity:list_system_grants_for_user': [
    'rule:admin_required or (role:reader and system_scope:all)',
    'List system grants for user.',
  ],
  'identity:check_system_grant_for_user': [
    'rule:admin_required or (role:reader and system_scope:all)',
    'Check system grant for user.',
  ],
  'identity:create_system_grant_for_user': ['rule:admin_required', 'Create system grant for user.'],
  'identity:revoke_system_grant_for_user': ['rule:admin_required', 'Revoke system grant for user.'],
  'identity:list_system_grants_for_group': [
    'rule:admin_required or (role:reader and system_scope:all)',
    'List system grants for group.',
  ],
  'identity:check_system_grant_for_group': [
    'rule:admin_required or (role:reader and system_scope:all)',
    'Check system grant for group.',
  ],
  'identity:create_system_grant_for_group': ['rule:admin_required', 'Create system grant for group.'],
  'identity:revoke_system_grant_for_group': ['rule:admin_required', 'Revoke system grant for group.'],
  'identity:list_role_assignments': [
    '(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)',
    'List role assignments.',
  ],
  'identity:get_domain': [
    'rule:admin_required or (role:reader and system_scope:all) or token.domain.id:%(target.domain.id)s or token.project.domain.id:%(target.domain.id)s',
    'Get domain.',
  ],
  'identity:list_domains': [
    'rule:admin_required or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain.id)s)',
    'List domains.',
  ],
});
