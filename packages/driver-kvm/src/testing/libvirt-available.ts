import { openLibvirt } from '../libvirt-binding.js';

/** Whether libvirtd answers on `uri` through the binding (tests skip, or fail with CI=true, otherwise). */
export async function libvirtAvailable(uri = 'qemu:///system'): Promise<boolean> {
  try {
    const conn = await openLibvirt(uri);
    await conn.connectClose();
    return true;
  } catch {
    return false;
  }
}

/** The command that starts libvirtd here (printed when tests skip). */
export const startLibvirtCommand = 'bash scripts/services/start-libvirt.sh';
