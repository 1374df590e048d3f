import { createServer } from 'node:net';

/** A free loopback port (the catalog must name the port before the app listens). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The rows of a prettytable the clients print (`| a | b |`), header first, cells trimmed. */
export function tableRows(out: string): string[][] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) =>
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
}

/** novaclient's `| Property | Value |` table (`print_dict`) as an object. */
export function propertyTable(out: string): Record<string, string> {
  const [, ...rows] = tableRows(out);
  return Object.fromEntries(rows.map(([k, v]) => [k!, v!]));
}
