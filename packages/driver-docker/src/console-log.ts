/**
 * Decodes Docker's multiplexed log stream (8-byte frame headers: stream type, 3 zero bytes, big-endian
 * length) into text. Buffers without frame headers (TTY containers) are returned as text.
 */
export function demuxLogs(buf: Buffer): string {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const type = buf[i]!;
    if (type > 2 || buf[i + 1] !== 0 || buf[i + 2] !== 0 || buf[i + 3] !== 0) return buf.toString('utf8');
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  if (i < buf.length && out.length === 0) return buf.toString('utf8');
  return Buffer.concat(out).toString('utf8');
}
