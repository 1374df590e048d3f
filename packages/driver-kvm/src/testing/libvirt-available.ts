import { KvmErrorCode } from '../errors.js';
import { type LibvirtConnector, openLibvirt } from '../libvirt-binding.js';

/** What {@link probeLibvirt} found. */
export type LibvirtProbe =
  | { readonly available: true }
  | {
      readonly available: false;
      /** `binding`: `@nova-lfs/libvirt` could not load koffi or libvirt.so.0; `daemon`: it loaded, libvirtd did not answer. */
      readonly problem: 'binding' | 'daemon';
      /** One line saying what is wrong and what to run. */
      readonly reason: string;
      readonly error: unknown;
    };

/** The command that starts libvirtd here (printed when tests skip). */
export const startLibvirtCommand = 'bash scripts/services/start-libvirt.sh';

/**
 * Whether libvirtd answers on `uri` through the binding, and if not, whether the binding did not
 * load (with its load error) or the daemon did not answer.
 */
export async function probeLibvirt(
  uri = 'qemu:///system',
  connect?: LibvirtConnector,
): Promise<LibvirtProbe> {
  try {
    const conn = await openLibvirt(uri, connect);
    await conn.close();
    return { available: true };
  } catch (error) {
    if ((error as { code?: unknown })?.code === KvmErrorCode.BindingUnavailable) {
      return { available: false, problem: 'binding', reason: (error as Error).message, error };
    }
    const why = error instanceof Error ? error.message : String(error);
    return {
      available: false,
      problem: 'daemon',
      reason: `libvirtd does not answer on ${uri} (${why}); start it with: ${startLibvirtCommand}`,
      error,
    };
  }
}

/** Whether libvirtd answers on `uri` through the binding (tests skip, or fail with CI=true, otherwise). */
export async function libvirtAvailable(uri = 'qemu:///system'): Promise<boolean> {
  return (await probeLibvirt(uri)).available;
}
