import { describe, expect, it } from 'vitest';
import { projectCaller } from '../testing/static-tokens.js';
import { PolicySyntaxError, parseCheck } from './check-parser.js';
import { PolicyEngine } from './policy-engine.js';

const member = projectCaller('alice', 'p1', ['member']);
const reader = projectCaller('rita', 'p1', ['reader']);
const admin = projectCaller('root', 'admin', ['admin']);

describe('policy', () => {
  it('parses oslo.policy check strings with nesting and target references', () => {
    expect(parseCheck('r', '(role:a or role:b) and not project_id:%(project_id)s')).toEqual({
      kind: 'and',
      checks: [
        {
          kind: 'or',
          checks: [
            { kind: 'role', role: 'a' },
            { kind: 'role', role: 'b' },
          ],
        },
        { kind: 'not', check: { kind: 'match', credential: 'project_id', value: '%(project_id)s' } },
      ],
    });
    expect(parseCheck('r', '')).toEqual({ kind: 'always' });
    expect(() => parseCheck('r', 'role:a or')).toThrow(PolicySyntaxError);
    expect(() => parseCheck('r', '(role:a')).toThrow(/missing \)/);
  });

  it('applies the default project rules with implied roles', () => {
    const p = new PolicyEngine();
    expect(p.enforce('project_member_or_admin', member, { project_id: 'p1' })).toBe(true);
    expect(p.enforce('project_member_or_admin', member, { project_id: 'p2' })).toBe(false);
    expect(p.enforce('project_member_or_admin', reader, { project_id: 'p1' })).toBe(false);
    expect(p.enforce('project_reader_or_admin', reader, { project_id: 'p1' })).toBe(true);
    expect(p.enforce('project_reader_or_admin', member, { project_id: 'p1' })).toBe(true);
    expect(p.enforce('project_member_or_admin', admin, { project_id: 'p2' })).toBe(true);
    expect(p.enforce('admin_api', member)).toBe(false);
    expect(p.enforce('no such rule', admin)).toBe(false);
  });

  it('lets an operator override a rule and refuses a broken override at load', () => {
    const p = new PolicyEngine({ admin_api: 'role:admin or role:operator' });
    expect(p.enforce('admin_api', projectCaller('op', 'p1', ['operator']))).toBe(true);
    p.register({ 'x:create': { check: 'rule:admin_api', description: 'x' } });
    expect(p.enforce('x:create', projectCaller('op', 'p1', ['operator']))).toBe(true);
    expect(() => new PolicyEngine({ admin_api: 'role:admin and (' })).toThrow(PolicySyntaxError);
  });

  it('never passes a rule that refers to itself', () => {
    const p = new PolicyEngine({ loop: 'rule:loop or rule:loop' });
    expect(p.enforce('loop', admin)).toBe(false);
  });
});
