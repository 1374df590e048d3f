import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { rebootKindSchema } from './requests.js';
import { parseInput } from './validation.js';

describe('rebootKindSchema', () => {
  it('accepts exactly soft and hard', () => {
    expect(parseInput(rebootKindSchema, 'soft')).toBe('soft');
    expect(parseInput(rebootKindSchema, 'hard')).toBe('hard');
  });

  it.each(['SOFT', 'Hard', 'graceful', '', ' soft', 'soft\u0000', null, undefined, 1])(
    'refuses %j with a ValidationError',
    (kind) => {
      const err = (() => {
        try {
          parseInput(rebootKindSchema, kind);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).details.issues[0]?.rule).toBe('invalid_value');
    },
  );
});
