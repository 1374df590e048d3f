import type { z } from 'zod';
import { type FieldIssue, ValidationError } from '../errors.js';

/**
 * Parses untrusted input with a zod schema. On failure throws a {@link ValidationError} whose
 * issues name every rejected field path (dotted) and the rule it broke; an unknown key of a
 * strict object is named by its own path.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.flatMap((issue): FieldIssue[] => {
    const path = issue.path.map(String);
    // an unknown key is named by its own path, not by the object holding it
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        path: [...path, key].join('.'),
        rule: issue.code,
        message: 'unknown field',
      }));
    }
    return [{ path: path.join('.'), rule: issue.code, message: issue.message }];
  });
  throw new ValidationError(issues, { cause: result.error });
}
