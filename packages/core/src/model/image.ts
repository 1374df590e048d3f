import { z } from 'zod';
import { displayNameSchema, idSchema, plainTextSchema } from './names.js';
import { refusingReservedKeys } from './reserved-keys.js';

/** Disk formats (Glance's names); `tar` is a root filesystem archive for container drivers. */
export const diskFormats = ['raw', 'qcow2', 'tar', 'initramfs'] as const;
/** Container formats (Glance's names). */
export const containerFormats = ['bare', 'docker', 'ovf'] as const;

/** An image property value: at most 4096 characters, no control characters. */
const propertyValueSchema = plainTextSchema(4096);

/**
 * Image properties read by the scheduler and drivers; other string properties are kept as given
 * (keys 1-255 characters; `__proto__`, `constructor` and `prototype` are refused; values at most
 * 4096 characters; no control characters in either).
 */
export const imagePropertiesSchema = refusingReservedKeys(
  z
    .object({
      /** CPU architecture the image runs on, e.g. `x86_64`. */
      architecture: propertyValueSchema.optional(),
      /** Hypervisor type required, e.g. `qemu`, `docker`, `lxc`. */
      hypervisorType: propertyValueSchema.optional(),
      /** Kernel command line for direct kernel boot. */
      kernelCmdline: propertyValueSchema.optional(),
      /** Id of an image holding the kernel for direct kernel boot. */
      kernelImageId: propertyValueSchema.optional(),
      /** Id of an image holding the initramfs for direct kernel boot. */
      ramdiskImageId: propertyValueSchema.optional(),
    })
    .catchall(propertyValueSchema)
    .superRefine((properties, ctx) => {
      for (const key of Object.keys(properties)) {
        if (!displayNameSchema.safeParse(key).success) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: 'a property name must be 1-255 characters without control characters',
          });
        }
      }
    }),
  { maxKeys: 128, itemName: 'image properties' },
);
/** Image properties. */
export type ImageProperties = z.output<typeof imagePropertiesSchema>;

/** Lower-case hex sha256 of some bytes. */
export const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits');

/** An image known to the image service. `sha256` is the identity of its bytes. */
export const imageSchema = z.object({
  id: idSchema,
  name: displayNameSchema,
  diskFormat: z.enum(diskFormats),
  containerFormat: z.enum(containerFormats).default('bare'),
  /** Lower-case hex sha256 of the image bytes. */
  sha256: sha256Schema,
  /** Size of the bytes. */
  sizeBytes: z.int().nonnegative(),
  properties: imagePropertiesSchema.default({}),
  createdAt: z.number().optional(),
});
/** An image known to the image service. */
export type Image = z.output<typeof imageSchema>;
