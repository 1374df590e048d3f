/**
 * Who is calling, as a validated token says: the user, the scope (a project, a domain or the
 * system) and the roles granted on that scope. Never holds the token or a password.
 */
export interface AuthContext {
  readonly userId: string;
  readonly userName: string;
  readonly userDomainId: string;
  /** The project the token is scoped to, or `null` for a domain, system or unscoped token. */
  readonly projectId: string | null;
  readonly projectName: string | null;
  readonly projectDomainId: string | null;
  /** The domain the token is scoped to (domain scope only). */
  readonly domainId: string | null;
  /** A system-scoped token (`scope.system.all`). */
  readonly system: boolean;
  /** Role names on the scope, lower case (`admin`, `member`, `reader`, ...). */
  readonly roles: readonly string[];
  /** The token's audit id (safe to log; not the token). */
  readonly auditId: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

/**
 * Validates the `X-Auth-Token` of a request. Implemented by the identity service; the HTTP layer
 * calls it for every route that needs a caller.
 */
export interface TokenValidator {
  /**
   * The caller the token names.
   * @throws ApiFault 401 for a malformed, unknown, expired or revoked token
   */
  validate(token: string): Promise<AuthContext>;
}

/** Whether the caller holds the `admin` role on its scope. */
export function isAdmin(auth: AuthContext | null): boolean {
  return auth?.roles.includes('admin') === true;
}
