import { createHash } from 'node:crypto';

/**
 * The id of the `index`-th instance of a create request that named its own request id: a UUID
 * derived from project, request id and index (name-based, RFC 9562 version 8 over SHA-256), so a
 * retried request finds the instances its first attempt created, in any process.
 */
export function instanceIdForRequest(projectId: string, requestId: string, index: number): string {
  const h = createHash('sha256').update(`nova-lfs\0${projectId}\0${requestId}\0${index}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80; // version 8
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
