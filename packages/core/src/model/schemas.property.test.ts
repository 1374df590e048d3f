import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { ValidationError } from '../errors.js';
import { flavorSchema } from './flavor.js';
import { aggregateSchema } from './host.js';
import { imagePropertiesSchema } from './image.js';
import { imageImportSchema, imageRegistrationSchema } from './image-requests.js';
import { displayNameSchema, idSchema, metadataSchema } from './names.js';
import { quotaLimitsSchema } from './quota.js';
import { createInstanceRequestSchema, rebuildRequestSchema } from './requests.js';
import { reservedKeys } from './reserved-keys.js';
import { parseInput } from './validation.js';

/** Pieces hostile to the places values end up in: XML, shell, SQL, JSON, paths, control bytes. */
const hostilePieces = [
  '<',
  '>',
  '&',
  '"',
  "'",
  ']]>',
  '<!--',
  '<domain type="kvm">',
  '&amp;',
  '$(',
  '`rm -rf /`',
  ';',
  '|',
  '&&',
  '\\',
  '../',
  '/',
  '%s',
  '%00',
  "' OR '1'='1",
  '--',
  '/*',
  '; DROP TABLE instances; --',
  '{',
  '}',
  '[',
  '"__proto__"',
  '\\u0000',
  '\u0000',
  '\n',
  '\r',
  '\t',
  '\u001b[31m',
  '\u007f',
  '\u0085',
  '\u009f',
  '\u2028',
  '\ud800',
  '\ufeff',
  '💥',
  'é',
  ' ',
  'a',
  'Z',
  '0',
  '.',
  '-',
  '_',
  ':',
  '@',
];

/** Strings built from hostile pieces and arbitrary code units, sometimes huge. */
const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.array(fc.constantFrom(...hostilePieces), { maxLength: 12 }).map((p) => p.join('')),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 300 }),
  fc
    .tuple(fc.constantFrom(...hostilePieces), fc.integer({ min: 100, max: 20_000 }))
    .map(([p, n]) => p.repeat(n)),
);

/** Numbers a limit or size must be checked against. */
const hostileNumber: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    -1,
    -5,
    0.5,
    2 ** 53,
    1e300,
    Number.MAX_SAFE_INTEGER,
  ),
  fc.double(),
  fc.integer(),
  fc.constantFrom('5', '', null, true, [], {}, undefined),
);

// biome-ignore lint/suspicious/noControlCharactersInRegex: the oracle looks for control characters
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;

/** Parses and returns the value, or the ValidationError (any other throw fails the property). */
function attempt<S extends z.ZodType>(
  schema: S,
  input: unknown,
): { ok: z.output<S> } | { error: ValidationError } {
  try {
    return { ok: parseInput(schema, input) };
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return { error: e as ValidationError };
  }
}

/** Every rejected field of `error` lies at or under `field`, and there is at least one. */
function expectNames(error: ValidationError, field: string): void {
  expect(error.code).toBe('NLFS_VALIDATION');
  expect(error.fields.length).toBeGreaterThan(0);
  for (const f of error.fields) expect(f === field || f.startsWith(`${field}.`)).toBe(true);
}

const baseRequest = { name: 'web', projectId: 'p1', userId: 'u1', flavorId: 'm1', imageId: 'img' };

describe('schemas under hostile input', () => {
  it('idSchema accepts exactly 1-255 of letters, digits and ._:@- (never a control character)', () => {
    fc.assert(
      fc.property(hostileString, (s) => {
        const r = attempt(idSchema, s);
        const valid = s.length >= 1 && s.length <= 255 && ID.test(s);
        if ('ok' in r) expect(r.ok).toBe(s);
        expect('ok' in r).toBe(valid);
      }),
    );
  });

  it('displayNameSchema accepts exactly 1-255 characters without control characters, unchanged', () => {
    fc.assert(
      fc.property(hostileString, (s) => {
        const r = attempt(displayNameSchema, s);
        if ('ok' in r) expect(r.ok).toBe(s);
        expect('ok' in r).toBe(s.length >= 1 && s.length <= 255 && !CONTROL.test(s));
      }),
    );
  });

  it('every id and name field of a create request parses to the same value or is refused by name', () => {
    const fields = ['name', 'projectId', 'userId', 'flavorId', 'imageId', 'availabilityZone', 'requestId'];
    fc.assert(
      fc.property(fc.constantFrom(...fields), hostileString, (field, value) => {
        const r = attempt(createInstanceRequestSchema, { ...baseRequest, [field]: value });
        if ('ok' in r) {
          expect((r.ok as Record<string, unknown>)[field]).toBe(value);
          expect(CONTROL.test(value)).toBe(false);
        } else expectNames(r.error, field);
      }),
    );
  });

  it('metadata keeps keys and values as given or names the field; no control characters get in', () => {
    fc.assert(
      fc.property(fc.dictionary(hostileString, hostileString, { maxKeys: 5 }), (metadata) => {
        const r = attempt(createInstanceRequestSchema, { ...baseRequest, metadata });
        if ('ok' in r) {
          expect(r.ok.metadata).toEqual(metadata);
          for (const [k, v] of Object.entries(r.ok.metadata)) {
            expect(CONTROL.test(k) || CONTROL.test(v)).toBe(false);
          }
        } else expectNames(r.error, 'metadata');
      }),
    );
  });

  it('metadata given as JSON (a hostile client) is kept or refused by name', () => {
    fc.assert(
      fc.property(fc.dictionary(hostileString, hostileString, { maxKeys: 4 }), (m) => {
        const metadata = JSON.parse(JSON.stringify(m)) as unknown;
        const r = attempt(rebuildRequestSchema, { imageId: 'img', metadata });
        if ('ok' in r) expect(r.ok.metadata).toEqual(metadata);
        else expectNames(r.error, 'metadata');
      }),
    );
  });

  it.each(reservedKeys)('refuses the metadata key %s at its path (it does not vanish)', (key) => {
    for (const metadata of [JSON.parse(`{"${key}": "x", "ok": "y"}`), { [key]: 'x' }]) {
      const r = attempt(createInstanceRequestSchema, { ...baseRequest, metadata });
      expect('error' in r && r.error.fields).toEqual([`metadata.${key}`]);
    }
  });

  it.each([
    ['a\u0000', 'key with NUL'],
    ['a\nb', 'key with a newline'],
    ['\u009b', 'key with a C1 control'],
  ])('refuses the metadata key %j (%s)', (key) => {
    const r = attempt(metadataSchema, { [key]: 'v' });
    expect('error' in r && r.error.fields).toEqual([key]);
  });

  it.each(['\u0000', 'x\ny', '\u001b[0m', '\u0085'])('refuses the metadata value %j', (value) => {
    const r = attempt(createInstanceRequestSchema, { ...baseRequest, metadata: { k: value } });
    expect('error' in r && r.error.fields).toEqual(['metadata.k']);
  });

  it('refuses more than 128 metadata items without reading them all', () => {
    const metadata = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, 'v']));
    const r = attempt(createInstanceRequestSchema, { ...baseRequest, metadata });
    expect('error' in r && r.error.fields).toEqual(['metadata']);
  });

  it('flavor extra specs, aggregate metadata and image properties refuse reserved keys and control characters', () => {
    const flavor = { id: 'm1', name: 'm1', vcpus: 1, ramMb: 1 };
    fc.assert(
      fc.property(fc.constantFrom(...reservedKeys, 'a\u0000', 'ok'), hostileString, (key, value) => {
        const specs = JSON.parse(JSON.stringify({ [key]: value })) as unknown;
        const bad = reservedKeys.includes(key) || CONTROL.test(key) || CONTROL.test(value);
        for (const [schema, input, field] of [
          [flavorSchema, { ...flavor, extraSpecs: specs }, 'extraSpecs'],
          [aggregateSchema, { id: 'a', name: 'a', metadata: specs }, 'metadata'],
          [imageImportSchema, { name: 'i', diskFormat: 'raw', properties: specs }, 'properties'],
        ] as const) {
          const r = attempt(schema, input);
          if ('ok' in r) expect((r.ok as Record<string, unknown>)[field]).toEqual(specs);
          else expectNames(r.error, field);
          if (bad) expect('error' in r).toBe(true);
        }
      }),
    );
    expect(attempt(imagePropertiesSchema, { kernelCmdline: 'console=ttyS0 quiet' })).toEqual({
      ok: { kernelCmdline: 'console=ttyS0 quiet' },
    });
  });

  it('image import and registration metadata are kept or refused by field', () => {
    const fields = ['id', 'name', 'diskFormat', 'containerFormat', 'sha256'];
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.oneof(hostileString, hostileNumber), (field, value) => {
        for (const schema of [imageImportSchema, imageRegistrationSchema]) {
          const input = { name: 'busybox', diskFormat: 'tar', sha256: 'a'.repeat(64), [field]: value };
          const r = attempt(schema, input);
          if ('ok' in r) expect((r.ok as Record<string, unknown>)[field]).toBe(value);
          else expectNames(r.error, field);
        }
      }),
    );
  });

  it('quota limits are integers from -1 up, else refused naming the resource', () => {
    fc.assert(
      fc.property(fc.constantFrom('instances', 'cores', 'ramMb'), hostileNumber, (field, value) => {
        const input = { instances: 10, cores: 20, ramMb: 1024, [field]: value };
        const r = attempt(quotaLimitsSchema, input);
        const valid = Number.isSafeInteger(value) && (value as number) >= -1;
        if ('ok' in r) expect(r.ok[field as 'cores']).toBe(value);
        else expectNames(r.error, field);
        expect('ok' in r).toBe(valid);
      }),
    );
  });

  it('quota limits refuse missing and unknown fields by name', () => {
    const missing = attempt(quotaLimitsSchema, {});
    expect('error' in missing && missing.error.fields.sort()).toEqual(['cores', 'instances', 'ramMb']);
    const typo = attempt(quotaLimitsSchema.partial(), { instance: 5 });
    expect('error' in typo && typo.error.fields).toEqual(['instance']);
  });
});
