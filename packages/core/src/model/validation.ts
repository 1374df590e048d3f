import type { z } from 'zod';
import { type FieldIssue, ValidationError } from '../errors.js';

/**
 * Parses untrusted input with a zod schema. On failure throws a {@link ValidationError} whose
 * issues name every rejected field path (dotted) and the rule it broke.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    rule: issue.code,
    message: issue.message,
  }));
  throw new ValidationError(issues, { cause: result.error });
}
