import { LibvirtBindingUnavailableError } from './errors.js';

/** Domain states as libvirt numbers them (`virDomainState`). */
export const LibvirtDomainState = {
  NoState: 0,
  Running: 1,
  Blocked: 2,
  Paused: 3,
  Shutdown: 4,
  Shutoff: 5,
  Crashed: 6,
  PmSuspended: 7,
} as const;

/** The part of `@unraid/libvirt`'s Domain the driver uses. */
export interface LibvirtDomain {
  create(): Promise<void>;
  shutdown(): Promise<void>;
  suspend(): Promise<void>;
  resume(): Promise<void>;
  destroy(): Promise<void>;
  undefine(): Promise<void>;
  save(filename: string): Promise<void>;
  getXMLDesc(flags?: number): Promise<string>;
  getInfo(): Promise<{ state: number; memory: number; nrVirtCpu: number }>;
  getUUIDString(): Promise<string>;
  getName(): Promise<string>;
}

/** The part of `@unraid/libvirt`'s Hypervisor the driver uses. */
export interface LibvirtConnection {
  connectOpen(): Promise<void>;
  connectClose(): Promise<void>;
  connectListAllDomains(flags?: number): Promise<LibvirtDomain[]>;
  domainDefineXML(xml: string): Promise<LibvirtDomain>;
  domainLookupByUUIDString(uuid: string): Promise<LibvirtDomain>;
  domainRestore(filename: string): Promise<void>;
  nodeGetInfo(): Promise<{ model: string; memory: number; cpus: number }>;
  connectGetHostname(): Promise<string>;
}

/** The binding module as the driver uses it. */
export interface LibvirtModule {
  readonly Hypervisor: new (o: { uri: string }) => LibvirtConnection;
}

/** Loads the binding module; replaceable (tests point it at a module that does not load). */
export type LibvirtLoader = () => Promise<LibvirtModule>;

/** The binding's npm name. */
export const LIBVIRT_MODULE = '@unraid/libvirt';

/**
 * Default loader: a dynamic import, so that the package installs and loads without the binding.
 * `@unraid/libvirt` loads its native addon only when a `Hypervisor` is constructed, so a missing
 * addon (built while `libvirt-dev` was absent) shows up there, and {@link openLibvirt} reports it
 * as the binding's load error too.
 */
export const defaultLibvirtLoader: LibvirtLoader = async () =>
  (await import(LIBVIRT_MODULE)) as LibvirtModule;

/**
 * Loads the binding and constructs its connection object, without opening it.
 * @throws LibvirtBindingUnavailableError with the load error when the module or its native addon
 *   does not load.
 */
export async function loadLibvirt(
  uri: string,
  loader: LibvirtLoader = defaultLibvirtLoader,
): Promise<LibvirtConnection> {
  try {
    const mod = await loader();
    return new mod.Hypervisor({ uri });
  } catch (e) {
    throw new LibvirtBindingUnavailableError(LIBVIRT_MODULE, { cause: e });
  }
}

/**
 * Opens a libvirt connection through the binding.
 * @throws LibvirtBindingUnavailableError when the binding (or its native addon) does not load;
 *   whatever `connectOpen` throws when libvirtd does not answer.
 */
export async function openLibvirt(
  uri: string,
  loader: LibvirtLoader = defaultLibvirtLoader,
): Promise<LibvirtConnection> {
  const conn = await loadLibvirt(uri, loader);
  await conn.connectOpen();
  return conn;
}
