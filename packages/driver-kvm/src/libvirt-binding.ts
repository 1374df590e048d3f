import { isNovaError } from '@nova-lfs/core';
import { Connection, LibvirtErrorCode } from '@nova-lfs/libvirt';
import { LibvirtBindingUnavailableError } from './errors.js';

/** The binding's npm name (the project's own, `packages/libvirt`). */
export const LIBVIRT_MODULE = '@nova-lfs/libvirt';

/**
 * Opens a libvirt connection; replaceable (the driver's `connect` option). The default is
 * `Connection.open` of `@nova-lfs/libvirt`.
 */
export type LibvirtConnector = (uri: string) => Promise<Connection>;

/** The default connector: `Connection.open(uri)`. */
export const defaultLibvirtConnector: LibvirtConnector = (uri) => Connection.open(uri);

/**
 * Opens a libvirt connection through the binding.
 * @throws LibvirtBindingUnavailableError when koffi or libvirt.so.0 does not load (the binding's
 *   `LibvirtUnavailableError` is its cause); whatever the connector throws otherwise (a
 *   `LibvirtError` when libvirtd does not answer).
 */
export async function openLibvirt(
  uri: string,
  connect: LibvirtConnector = defaultLibvirtConnector,
): Promise<Connection> {
  try {
    return await connect(uri);
  } catch (e) {
    if (isNovaError(e, LibvirtErrorCode.Unavailable))
      throw new LibvirtBindingUnavailableError(LIBVIRT_MODULE, { cause: e });
    throw e;
  }
}
