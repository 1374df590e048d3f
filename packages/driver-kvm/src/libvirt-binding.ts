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

/** Loads the binding module; replaceable for tests of the missing-binding path. */
export type LibvirtLoader = () => Promise<{ Hypervisor: new (o: { uri: string }) => LibvirtConnection }>;

/** The binding's npm name. */
export const LIBVIRT_MODULE = '@unraid/libvirt';

/** Default loader: a dynamic import, so that the package installs and loads without the binding. */
export const defaultLibvirtLoader: LibvirtLoader = async () =>
  (await import(LIBVIRT_MODULE)) as { Hypervisor: new (o: { uri: string }) => LibvirtConnection };

/**
 * Opens a libvirt connection through the binding.
 * @throws LibvirtBindingUnavailableError when the binding cannot be loaded.
 */
export async function openLibvirt(
  uri: string,
  loader: LibvirtLoader = defaultLibvirtLoader,
): Promise<LibvirtConnection> {
  let mod: Awaited<ReturnType<LibvirtLoader>>;
  try {
    mod = await loader();
  } catch (e) {
    throw new LibvirtBindingUnavailableError(LIBVIRT_MODULE, { cause: e });
  }
  const conn = new mod.Hypervisor({ uri });
  await conn.connectOpen();
  return conn;
}
