import { createHash } from 'node:crypto';

/** Bytes in a VHD footer. */
export const VHD_FOOTER_BYTES = 512;
/** Raw images are padded with zeros up to a multiple of this before the footer (1 MiB). */
export const VHD_ALIGNMENT_BYTES = 1 << 20;

/** The size a raw image of `rawBytes` has as a fixed VHD's data area (padded to 1 MiB, at least 1 MiB). */
export function vhdDataBytes(rawBytes: number): number {
  return Math.max(VHD_ALIGNMENT_BYTES, Math.ceil(rawBytes / VHD_ALIGNMENT_BYTES) * VHD_ALIGNMENT_BYTES);
}

/** CHS geometry of a VHD of `sizeBytes`, by the algorithm of Microsoft's VHD specification (appendix). */
export function vhdGeometry(sizeBytes: number): {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
} {
  let totalSectors = Math.floor(sizeBytes / 512);
  if (totalSectors > 65535 * 16 * 255) totalSectors = 65535 * 16 * 255;
  let sectorsPerTrack: number;
  let heads: number;
  let cylinderTimesHeads: number;
  if (totalSectors >= 65535 * 16 * 63) {
    sectorsPerTrack = 255;
    heads = 16;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
  } else {
    sectorsPerTrack = 17;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    heads = Math.floor((cylinderTimesHeads + 1023) / 1024);
    if (heads < 4) heads = 4;
    if (cylinderTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
    if (cylinderTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
  }
  return { cylinders: Math.floor(cylinderTimesHeads / heads), heads, sectorsPerTrack };
}

/**
 * The 512-byte footer that turns `dataBytes` of raw disk data (a multiple of 512) into a fixed
 * VHD, which Hyper-V attaches and uses as the parent of differencing disks. Deterministic: the
 * timestamp is 0 and the disk's unique id is derived from `seed` (the image's sha256), so the
 * same image always makes the same bytes and the host can check them by hash.
 */
export function fixedVhdFooter(dataBytes: number, seed: string): Buffer {
  if (dataBytes % 512 !== 0) throw new RangeError(`VHD data size ${dataBytes} is not a multiple of 512`);
  const f = Buffer.alloc(VHD_FOOTER_BYTES);
  f.write('conectix', 0, 'ascii');
  f.writeUInt32BE(0x00000002, 8); // features: reserved bit always set
  f.writeUInt32BE(0x00010000, 12); // file format version 1.0
  f.writeBigUInt64BE(0xffffffffffffffffn, 16); // data offset: none for a fixed disk
  f.writeUInt32BE(0, 24); // timestamp (deterministic)
  f.write('nlfs', 28, 'ascii'); // creator application
  f.writeUInt32BE(0x00010000, 32); // creator version
  f.write('Wi2k', 36, 'ascii'); // creator host OS
  f.writeBigUInt64BE(BigInt(dataBytes), 40); // original size
  f.writeBigUInt64BE(BigInt(dataBytes), 48); // current size
  const g = vhdGeometry(dataBytes);
  f.writeUInt16BE(g.cylinders, 56);
  f.writeUInt8(g.heads, 58);
  f.writeUInt8(g.sectorsPerTrack, 59);
  f.writeUInt32BE(2, 60); // disk type: fixed
  createHash('sha256').update(`nova-lfs vhd ${seed}`).digest().copy(f, 68, 0, 16); // unique id
  f.writeUInt8(0, 84); // saved state
  let sum = 0;
  for (const b of f) sum += b; // checksum field (64..67) is still zero
  f.writeUInt32BE(~sum >>> 0, 64);
  return f;
}
