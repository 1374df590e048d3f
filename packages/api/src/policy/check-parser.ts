/**
 * The check language of OpenStack policy files (oslo.policy): `role:admin`,
 * `project_id:%(project_id)s`, `rule:other`, `@` (always), `!` (never), joined with `and`, `or`,
 * `not` and parentheses. Parsed once into a tree that evaluates without allocation.
 */
export type Check =
  | { readonly kind: 'always' }
  | { readonly kind: 'never' }
  | { readonly kind: 'rule'; readonly name: string }
  | { readonly kind: 'role'; readonly role: string }
  | { readonly kind: 'match'; readonly credential: string; readonly value: string }
  | { readonly kind: 'not'; readonly check: Check }
  | { readonly kind: 'and'; readonly checks: readonly Check[] }
  | { readonly kind: 'or'; readonly checks: readonly Check[] };

/** A policy rule that does not parse; names the rule and the token. */
export class PolicySyntaxError extends Error {
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(`policy rule ${JSON.stringify(rule)}: ${message}`);
    this.name = 'PolicySyntaxError';
  }
}

/** Parses one check string; an empty string is `@` (oslo.policy's meaning). */
export function parseCheck(rule: string, text: string): Check {
  const tokens = tokenize(text);
  if (tokens.length === 0) return { kind: 'always' };
  let at = 0;
  const peek = (): string | undefined => tokens[at];
  const next = (): string => {
    const t = tokens[at++];
    if (t === undefined) throw new PolicySyntaxError(rule, 'unexpected end');
    return t;
  };
  const parseOr = (): Check => {
    const checks = [parseAnd()];
    while (peek()?.toLowerCase() === 'or') {
      next();
      checks.push(parseAnd());
    }
    return checks.length === 1 ? checks[0]! : { kind: 'or', checks };
  };
  const parseAnd = (): Check => {
    const checks = [parseNot()];
    while (peek()?.toLowerCase() === 'and') {
      next();
      checks.push(parseNot());
    }
    return checks.length === 1 ? checks[0]! : { kind: 'and', checks };
  };
  const parseNot = (): Check => {
    if (peek()?.toLowerCase() === 'not') {
      next();
      return { kind: 'not', check: parseNot() };
    }
    return parseAtom();
  };
  const parseAtom = (): Check => {
    const t = next();
    if (t === '(') {
      const inner = parseOr();
      if (peek() !== ')') throw new PolicySyntaxError(rule, 'missing )');
      next();
      return inner;
    }
    if (t === '@') return { kind: 'always' };
    if (t === '!') return { kind: 'never' };
    const colon = t.indexOf(':');
    if (colon <= 0) throw new PolicySyntaxError(rule, `cannot read ${JSON.stringify(t)}`);
    const key = t.slice(0, colon);
    const value = t.slice(colon + 1);
    if (key === 'rule') return { kind: 'rule', name: value };
    if (key === 'role') return { kind: 'role', role: value.toLowerCase() };
    return { kind: 'match', credential: key, value };
  };
  const check = parseOr();
  if (at !== tokens.length) throw new PolicySyntaxError(rule, `unexpected ${JSON.stringify(tokens[at])}`);
  return check;
}

function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const chunk of text.split(/\s+/)) {
    let word = chunk;
    while (word.startsWith('(')) {
      out.push('(');
      word = word.slice(1);
    }
    let closing = 0;
    while (word.endsWith(')') && !/%\([\w.]+\)$/.test(word)) {
      closing++;
      word = word.slice(0, -1);
    }
    if (word !== '') out.push(word);
    for (let i = 0; i < closing; i++) out.push(')');
  }
  return out;
}
