import { ApiFault } from '../http/api-fault.js';
import type { AuthContext, TokenValidator } from '../http/auth-context.js';

/**
 * A token validator over a fixed table of tokens, for tests of route modules without the identity
 * service (the identity service's own tests cover real tokens). Unknown tokens get 401.
 */
export class StaticTokenValidator implements TokenValidator {
  constructor(private readonly table: ReadonlyMap<string, AuthContext>) {}

  async validate(token: string): Promise<AuthContext> {
    const auth = this.table.get(token);
    if (!auth) throw new ApiFault(401, 'The request you have made requires authentication.');
    return auth;
  }
}

/** A project-scoped caller with the given roles. */
export function projectCaller(user: string, project: string, roles: readonly string[]): AuthContext {
  return {
    userId: `${user}-id`,
    userName: user,
    userDomainId: 'default',
    projectId: project,
    projectName: project,
    projectDomainId: 'default',
    domainId: null,
    system: false,
    roles,
    auditId: `audit-${user}`,
    expiresAt: Date.now() + 3_600_000,
  };
}

/**
 * The callers tests use: `admin` (admin of project `admin`), `alice` (member of `p1`), `rita`
 * (reader of `p1`) and `bob` (member of `p2`); the token is the user name.
 */
export function standardCallers(): Map<string, AuthContext> {
  return new Map([
    ['admin', projectCaller('admin', 'admin', ['admin', 'member', 'reader'])],
    ['alice', projectCaller('alice', 'p1', ['member', 'reader'])],
    ['rita', projectCaller('rita', 'p1', ['reader'])],
    ['bob', projectCaller('bob', 'p2', ['member', 'reader'])],
  ]);
}
