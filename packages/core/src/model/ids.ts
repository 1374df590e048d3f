import { randomUUID } from 'node:crypto';

/** Character codes of the hexadecimal digits. */
const DIGITS = Buffer.from('0123456789abcdef', 'latin1');
/** Where the 12 hex digits of the millisecond timestamp go in `xxxxxxxx-xxxx-7...`. */
const TIME_AT = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12];
const text = Buffer.alloc(36, '-');

/**
 * A new record id: a UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random
 * bits (taken from `crypto.randomUUID()`). Ids created later sort later, so database indexes on
 * instance, action and claim ids grow at one end (a handful of pages written per commit) instead
 * of at random pages; ids made in the same millisecond are in random order. The string is flat
 * (written into a buffer, not concatenated from pieces), since ids live as long as their records.
 */
export function newId(): string {
  const random = randomUUID(); // xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx, V the variant
  const ms = Date.now();
  let low = ms % 0x1000000;
  let high = Math.floor(ms / 0x1000000);
  for (let i = 11; i >= 6; i--) {
    text[TIME_AT[i]!] = DIGITS[low & 15]!;
    low >>>= 4;
  }
  for (let i = 5; i >= 0; i--) {
    text[TIME_AT[i]!] = DIGITS[high & 15]!;
    high >>>= 4;
  }
  text[14] = 0x37; // '7': version 7
  for (let i = 15; i < 36; i++) text[i] = random.charCodeAt(i);
  return text.toString('latin1');
}
