import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ApiFault } from '../http/api-fault.js';
import type { AuthContext } from '../http/auth-context.js';
import { type Check, PolicySyntaxError, parseCheck } from './check-parser.js';

/** Attributes of the object a rule is checked against (`%(project_id)s` reads `project_id`). */
export type PolicyTarget = Readonly<Record<string, string | null | undefined>>;

/** A rule with its default check and what it guards (shown in generated policy docs). */
export interface PolicyRuleDefault {
  readonly check: string;
  readonly description: string;
}

/** Rule defaults from a compact `name: [check, description]` table. */
export function policyDefaults(entries: Record<string, [string, string]>): Record<string, PolicyRuleDefault> {
  const out: Record<string, PolicyRuleDefault> = {};
  for (const [name, [check, description]] of Object.entries(entries)) out[name] = { check, description };
  return out;
}

/**
 * Base rules, as in Nova's and Keystone's current defaults: `admin`, a project's `member` and
 * `reader` (roles imply one another: admin implies member implies reader, as Keystone's default
 * implied roles do).
 */
export const baseRules: Readonly<Record<string, PolicyRuleDefault>> = {
  context_is_admin: { check: 'role:admin', description: 'The caller is an administrator.' },
  admin_api: { check: 'role:admin', description: 'Administrator-only APIs.' },
  project_member_api: {
    check: 'role:member and project_id:%(project_id)s',
    description: 'A member of the project that owns the target.',
  },
  project_reader_api: {
    check: 'role:reader and project_id:%(project_id)s',
    description: 'A reader of the project that owns the target.',
  },
  project_member_or_admin: {
    check: 'rule:project_member_api or rule:context_is_admin',
    description: 'A member of the owning project, or an administrator.',
  },
  project_reader_or_admin: {
    check: 'rule:project_reader_api or rule:context_is_admin',
    description: 'A reader of the owning project, or an administrator.',
  },
  owner: { check: 'user_id:%(user_id)s', description: 'The user the target belongs to.' },
  admin_or_owner: {
    check: 'rule:context_is_admin or rule:owner',
    description: 'An administrator or the user.',
  },
};

const impliedRoles: Readonly<Record<string, readonly string[]>> = {
  admin: ['member', 'reader'],
  member: ['reader'],
};

/**
 * Decides whether a caller may perform an operation: every route names a rule; rules have
 * defaults registered by the route modules and may be overridden by an operator's YAML policy
 * file (oslo.policy's format: `"rule name": "check string"`).
 */
export class PolicyEngine {
  private readonly defaults = new Map<string, PolicyRuleDefault>();
  private readonly overrides: ReadonlyMap<string, string>;
  private readonly compiled = new Map<string, Check>();

  /** @throws PolicySyntaxError naming the first override that does not parse */
  constructor(overrides: Readonly<Record<string, string>> = {}) {
    const map = new Map<string, string>();
    for (const [name, check] of Object.entries(overrides)) {
      if (typeof check !== 'string') throw new PolicySyntaxError(name, 'must be a check string');
      parseCheck(name, check);
      map.set(name, check);
    }
    this.overrides = map;
    this.register(baseRules);
  }

  /** Reads an operator's YAML (or JSON) policy file. */
  static fromFile(path: string): PolicyEngine {
    const parsed: unknown = parseYaml(readFileSync(path, 'utf8'));
    if (parsed === null || parsed === undefined) return new PolicyEngine();
    if (typeof parsed !== 'object' || Array.isArray(parsed))
      throw new PolicySyntaxError(path, 'a policy file maps rule names to check strings');
    return new PolicyEngine(parsed as Record<string, string>);
  }

  /** Adds rule defaults (a route module's); an override of the same name wins. */
  register(rules: Readonly<Record<string, PolicyRuleDefault>>): void {
    for (const [name, rule] of Object.entries(rules)) {
      this.defaults.set(name, rule);
      this.compiled.delete(name);
    }
  }

  /** Every rule with its effective check string (for `/policy` docs and tests). */
  rules(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of this.defaults.keys()) out[name] = this.checkOf(name);
    for (const [name, check] of this.overrides) out[name] = check;
    return out;
  }

  /** Whether the caller passes the rule for the target. An unknown rule never passes. */
  enforce(rule: string, auth: AuthContext, target: PolicyTarget = {}): boolean {
    const roles = effectiveRoles(auth.roles);
    return this.evaluate(this.compiledRule(rule), auth, roles, target, 0);
  }

  /**
   * @throws ApiFault 403 `Policy doesn't allow RULE to be performed.` (Nova's words)
   */
  authorize(rule: string, auth: AuthContext, target: PolicyTarget = {}): void {
    if (!this.enforce(rule, auth, target))
      throw new ApiFault(403, `Policy doesn't allow ${rule} to be performed.`, { faultName: 'forbidden' });
  }

  private checkOf(name: string): string {
    return this.overrides.get(name) ?? this.defaults.get(name)?.check ?? '!';
  }

  private compiledRule(name: string): Check {
    let check = this.compiled.get(name);
    if (!check) {
      check = parseCheck(name, this.checkOf(name));
      this.compiled.set(name, check);
    }
    return check;
  }

  private evaluate(
    check: Check,
    auth: AuthContext,
    roles: ReadonlySet<string>,
    target: PolicyTarget,
    depth: number,
  ): boolean {
    if (depth > 32) return false; // a rule that refers to itself never passes
    switch (check.kind) {
      case 'always':
        return true;
      case 'never':
        return false;
      case 'rule':
        return this.evaluate(this.compiledRule(check.name), auth, roles, target, depth + 1);
      case 'role':
        return roles.has(check.role);
      case 'not':
        return !this.evaluate(check.check, auth, roles, target, depth + 1);
      case 'and':
        return check.checks.every((c) => this.evaluate(c, auth, roles, target, depth + 1));
      case 'or':
        return check.checks.some((c) => this.evaluate(c, auth, roles, target, depth + 1));
      case 'match':
        return matches(check.credential, check.value, auth, roles, target);
    }
  }
}

function effectiveRoles(roles: readonly string[]): ReadonlySet<string> {
  const out = new Set<string>();
  for (const role of roles) {
    const r = role.toLowerCase();
    out.add(r);
    for (const implied of impliedRoles[r] ?? []) out.add(implied);
  }
  return out;
}

function credentialOf(name: string, auth: AuthContext, roles: ReadonlySet<string>): string | null {
  switch (name) {
    case 'project_id':
      return auth.projectId;
    case 'user_id':
      return auth.userId;
    case 'domain_id':
    case 'token.domain.id':
      // oslo.context's domain_id: the domain a domain-scoped token is scoped to (never a project's)
      return auth.domainId;
    case 'project_domain_id':
    case 'token.project.domain.id':
      return auth.projectDomainId;
    case 'token.project.id':
      return auth.projectId;
    case 'token.user.id':
      return auth.userId;
    case 'user_domain_id':
      return auth.userDomainId;
    case 'is_admin':
      return roles.has('admin') ? 'True' : 'False';
    case 'system_scope':
      return auth.system ? 'all' : null;
    default:
      return null;
  }
}

function matches(
  credential: string,
  value: string,
  auth: AuthContext,
  roles: ReadonlySet<string>,
  target: PolicyTarget,
): boolean {
  const have = credentialOf(credential, auth, roles);
  if (have === null) return false;
  const ref = /^%\(([\w.]+)\)s$/.exec(value); // Keystone's targets are dotted: %(target.user.id)s
  const want = ref ? target[ref[1]!] : value;
  return want !== undefined && want !== null && want === have;
}
