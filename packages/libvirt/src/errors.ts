import { ErrorCode, NovaError } from '@nova-lfs/core';
import { virErrorDomainNames, virErrorNumberNames } from './error-codes.js';

/** Stable error codes of `@nova-lfs/libvirt`. */
export const LibvirtErrorCode = {
  /** A libvirt call failed; `details` holds libvirt's own error (code, domain, message, level). */
  Call: ErrorCode.LibvirtCall,
  /** koffi or `libvirt.so.0` could not be loaded. */
  Unavailable: ErrorCode.LibvirtUnavailable,
  /** The connection, domain or snapshot handle was closed or freed before the call. */
  Closed: ErrorCode.LibvirtClosed,
} as const;

/** libvirt's error level (`virErrorLevel`). */
export const VirErrorLevel = { None: 0, Warning: 1, Error: 2 } as const;

/**
 * How sure the binding is that the libvirt error belongs to the call it is reported on.
 * `certain`: only this call could have raised it. `ambiguous`: another call failed while both
 * were in flight and the two errors could not be told apart (see the package README, "Errors").
 */
export type ErrorAttribution = 'certain' | 'ambiguous';

/** libvirt's error as read from the failing thread's `virError`, plus the call that failed. */
export interface LibvirtErrorDetails {
  /** The C function that failed, e.g. `virDomainLookupByName`. */
  readonly operation: string;
  /** libvirt's error number (`virErrorNumber`, see {@link VirErrorNumber}); 0 when libvirt set none. */
  readonly code: number;
  /** Its `VIR_ERR_*` name, e.g. `VIR_ERR_NO_DOMAIN` (`VIR_ERR_<n>` for numbers newer than this table). */
  readonly codeName: string;
  /** The part of libvirt that raised it (`virErrorDomain`, see {@link VirErrorDomain}). */
  readonly domain: number;
  /** Its `VIR_FROM_*` name, e.g. `VIR_FROM_QEMU`. */
  readonly domainName: string;
  /** libvirt's message (already formatted by libvirt, in its locale). */
  readonly message: string;
  /** {@link VirErrorLevel}: 1 warning, 2 error. */
  readonly level: number;
  /** libvirt's extra fields (`str1..3`, `int1..2`), as libvirt filled them (often empty). */
  readonly str1?: string;
  readonly str2?: string;
  readonly str3?: string;
  readonly int1: number;
  readonly int2: number;
  /** See {@link ErrorAttribution}. */
  readonly attribution: ErrorAttribution;
}

/** The raw fields of a `virError`, as decoded by the binding. */
export interface RawVirError {
  readonly code: number;
  readonly domain: number;
  readonly message: string | null;
  readonly level: number;
  readonly str1: string | null;
  readonly str2: string | null;
  readonly str3: string | null;
  readonly int1: number;
  readonly int2: number;
}

/**
 * A libvirt call failed. `details.code` and `details.domain` are libvirt's numbers, read from the
 * `virError` of the thread that ran the call (see the README, "Errors"); match on them (e.g.
 * `err.details.code === VirErrorNumber.NoDomain`) or with {@link isLibvirtError}, never on the message.
 */
export class LibvirtError extends NovaError<LibvirtErrorDetails> {
  constructor(operation: string, raw: RawVirError | undefined, attribution: ErrorAttribution) {
    const code = raw?.code ?? 0;
    const domain = raw?.domain ?? 0;
    const message = raw?.message ?? `${operation} failed and libvirt reported no error`;
    super(LibvirtErrorCode.Call, `${operation}: ${message}`, {
      operation,
      code,
      codeName: virErrorNumberNames[code] ?? `VIR_ERR_${code}`,
      domain,
      domainName: virErrorDomainNames[domain] ?? `VIR_FROM_${domain}`,
      message,
      level: raw?.level ?? VirErrorLevel.Error,
      ...(raw?.str1 ? { str1: raw.str1 } : {}),
      ...(raw?.str2 ? { str2: raw.str2 } : {}),
      ...(raw?.str3 ? { str3: raw.str3 } : {}),
      int1: raw?.int1 ?? 0,
      int2: raw?.int2 ?? 0,
      attribution,
    });
  }
}

/** Whether `e` is a {@link LibvirtError}, optionally with libvirt error number `code`. */
export function isLibvirtError(e: unknown, code?: number): e is LibvirtError {
  if (!(e instanceof Error)) return false;
  const c = e as { code?: unknown; details?: { code?: unknown } };
  if (c.code !== LibvirtErrorCode.Call || typeof c.details?.code !== 'number') return false;
  return code === undefined || c.details.code === code;
}

/**
 * koffi (its prebuilt binary, from the optional dependency `@koromix/koffi-<platform>`) or
 * `libvirt.so.0` (Debian `libvirt0`) did not load. `details.what` names which; the cause keeps the
 * loader's error.
 */
export class LibvirtUnavailableError extends NovaError<{ what: 'koffi' | 'libvirt'; loadError: string }> {
  constructor(what: 'koffi' | 'libvirt', cause: unknown) {
    const loadError = cause instanceof Error ? cause.message : String(cause);
    const hint =
      what === 'koffi'
        ? 'reinstall without omitting optional dependencies (pnpm install)'
        : 'install it with: apt-get install libvirt0 (Debian package of libvirt.so.0)';
    super(
      LibvirtErrorCode.Unavailable,
      `${what === 'koffi' ? 'koffi' : 'libvirt.so.0'} did not load (${loadError.split('\n')[0]}); ${hint}`,
      { what, loadError },
      { cause },
    );
  }
}

/** A call on a connection that was closed, or on a domain or snapshot handle that was freed. */
export class LibvirtClosedError extends NovaError<{
  handle: 'connection' | 'domain' | 'snapshot';
  name?: string;
}> {
  constructor(handle: 'connection' | 'domain' | 'snapshot', name?: string) {
    super(
      LibvirtErrorCode.Closed,
      `the libvirt ${handle}${name ? ` ${name}` : ''} was ${handle === 'connection' ? 'closed' : 'freed'}`,
      name === undefined ? { handle } : { handle, name },
    );
  }
}
