import { z } from 'zod';
import { displayNameSchema, idSchema } from './names.js';

/** Disk formats (Glance's names); `tar` is a root filesystem archive for container drivers. */
export const diskFormats = ['raw', 'qcow2', 'tar', 'initramfs'] as const;
/** Container formats (Glance's names). */
export const containerFormats = ['bare', 'docker', 'ovf'] as const;

/** Image properties read by the scheduler and drivers; other string properties are kept as given. */
export const imagePropertiesSchema = z
  .object({
    /** CPU architecture the image runs on, e.g. `x86_64`. */
    architecture: z.string().optional(),
    /** Hypervisor type required, e.g. `qemu`, `docker`, `lxc`. */
    hypervisorType: z.string().optional(),
    /** Kernel command line for direct kernel boot. */
    kernelCmdline: z.string().optional(),
    /** Id of an image holding the kernel for direct kernel boot. */
    kernelImageId: z.string().optional(),
    /** Id of an image holding the initramfs for direct kernel boot. */
    ramdiskImageId: z.string().optional(),
  })
  .catchall(z.string());
/** Image properties. */
export type ImageProperties = z.output<typeof imagePropertiesSchema>;

/** An image known to the image service. `sha256` is the identity of its bytes. */
export const imageSchema = z.object({
  id: idSchema,
  name: displayNameSchema,
  diskFormat: z.enum(diskFormats),
  containerFormat: z.enum(containerFormats).default('bare'),
  /** Lower-case hex sha256 of the image bytes. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits'),
  /** Size of the bytes. */
  sizeBytes: z.int().nonnegative(),
  properties: imagePropertiesSchema.default({}),
  createdAt: z.number().optional(),
});
/** An image known to the image service. */
export type Image = z.output<typeof imageSchema>;
