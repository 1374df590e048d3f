import { TypedParamType } from './constants.js';
import { type LibvirtNative, type Pointer, TYPED_PARAM_SIZE } from './native.js';

/** One libvirt typed parameter (`virTypedParameter`): a named, typed value. */
export type TypedParameter =
  | { readonly name: string; readonly type: 'int' | 'uint' | 'double'; readonly value: number }
  | { readonly name: string; readonly type: 'llong' | 'ullong'; readonly value: number | bigint }
  | { readonly name: string; readonly type: 'boolean'; readonly value: boolean }
  | { readonly name: string; readonly type: 'string'; readonly value: string };

/** A typed parameter's value as read back. */
export type TypedParameterValue = number | bigint | boolean | string;

const ADDERS = {
  int: 'virTypedParamsAddInt',
  uint: 'virTypedParamsAddUInt',
  llong: 'virTypedParamsAddLLong',
  ullong: 'virTypedParamsAddULLong',
  double: 'virTypedParamsAddDouble',
  boolean: 'virTypedParamsAddBoolean',
  string: 'virTypedParamsAddString',
} as const;

/** A `bigint` that fits in a JS number becomes a number; larger ones stay exact. */
export function toSafeNumber(v: number | bigint): number | bigint {
  if (typeof v === 'number') return v;
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * A typed parameter array allocated by libvirt (`virTypedParamsAdd*`), for calls such as
 * `virDomainMigrateToURI3`. Free it with {@link NativeTypedParams.free} once the call is done.
 */
export class NativeTypedParams {
  private ptr: Pointer | null = null;
  private count = 0;
  private max = 0;

  constructor(private readonly native: LibvirtNative) {}

  /** Appends `params` (libvirt refuses a repeated name except for string lists such as `migrate_disks`). */
  add(params: readonly TypedParameter[]): this {
    for (const p of params) {
      const pp = [this.ptr];
      const np = [this.count];
      const mp = [this.max];
      const value = p.type === 'boolean' ? (p.value ? 1 : 0) : p.value;
      this.native.callSync(ADDERS[p.type], pp, np, mp, p.name, value);
      this.ptr = pp[0] as Pointer | null;
      this.count = np[0] as number;
      this.max = mp[0] as number;
    }
    return this;
  }

  /** The array's pointer (null when empty) and length. */
  get pointer(): Pointer | null {
    return this.ptr;
  }
  get length(): number {
    return this.count;
  }

  /** Frees the array and the strings in it. Idempotent. */
  free(): void {
    if (this.ptr !== null) this.native.callSync('virTypedParamsFree', this.ptr, this.count);
    this.ptr = null;
    this.count = 0;
    this.max = 0;
  }
}

/** Reads `n` typed parameters at `ptr` (libvirt's layout on 64-bit Linux). Does not free them. */
export function decodeTypedParams(native: LibvirtNative, ptr: Pointer, n: number): TypedParameter[] {
  const k = native.koffi;
  const nameType = k.array('char', 80, 'String');
  const out: TypedParameter[] = [];
  for (let i = 0; i < n; i++) {
    const base = i * TYPED_PARAM_SIZE;
    const name = k.decode(ptr, base, nameType) as string;
    const type = k.decode(ptr, base + 80, 'int') as number;
    const at = base + 88;
    switch (type) {
      case TypedParamType.Int:
        out.push({ name, type: 'int', value: k.decode(ptr, at, 'int') as number });
        break;
      case TypedParamType.UInt:
        out.push({ name, type: 'uint', value: k.decode(ptr, at, 'unsigned int') as number });
        break;
      case TypedParamType.LLong:
        out.push({ name, type: 'llong', value: toSafeNumber(k.decode(ptr, at, 'int64') as number | bigint) });
        break;
      case TypedParamType.ULLong:
        out.push({
          name,
          type: 'ullong',
          value: toSafeNumber(k.decode(ptr, at, 'uint64') as number | bigint),
        });
        break;
      case TypedParamType.Double:
        out.push({ name, type: 'double', value: k.decode(ptr, at, 'double') as number });
        break;
      case TypedParamType.Boolean:
        out.push({ name, type: 'boolean', value: (k.decode(ptr, at, 'char') as number) !== 0 });
        break;
      case TypedParamType.String:
        out.push({ name, type: 'string', value: (k.decode(ptr, at, 'const char *') as string | null) ?? '' });
        break;
      default:
        // A type newer than this binding: skip it rather than misread it.
        break;
    }
  }
  return out;
}

/** Typed parameters as a record by name (the last one wins for a repeated name). */
export function typedParamsToRecord(params: readonly TypedParameter[]): Record<string, TypedParameterValue> {
  const r: Record<string, TypedParameterValue> = {};
  for (const p of params) r[p.name] = p.value;
  return r;
}
