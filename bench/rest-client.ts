import http from 'node:http';

/**
 * The benchmarks' HTTP client of the REST API: plain `node:http` requests on a keep-alive agent,
 * and {@link EventFollower}, which follows `GET /v2.1/events` to learn when a server went ACTIVE
 * or was deleted (no polling).
 */

/** Where the clients reach the listener. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** One HTTP answer, read whole. */
export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
}

/** One request on `agent` with an `x-auth-token` (when given) and a JSON body (when given). */
export function request(
  agent: http.Agent,
  endpoint: Endpoint,
  method: string,
  path: string,
  token: string | undefined,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: endpoint.host,
        port: endpoint.port,
        method,
        path,
        agent,
        headers: {
          accept: 'application/json',
          ...(token ? { 'x-auth-token': token } : {}),
          ...(body !== undefined
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One JSON request with `fetch` (setup only: nothing measured goes through it).
 * @throws Error naming the request and the status when `want` is given and not answered
 */
export async function call(
  endpoint: Endpoint,
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
  want?: number,
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const r = await fetch(`http://${endpoint.host}:${endpoint.port}${path}`, {
    method,
    headers: {
      ...(token ? { 'x-auth-token': token } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  if (want !== undefined && r.status !== want)
    throw new Error(`${method} ${path} answered ${r.status} (wanted ${want}): ${text.slice(0, 300)}`);
  return { status: r.status, json: text ? JSON.parse(text) : {}, headers: r.headers };
}

/** What the event stream told about one server so far. */
interface Seen {
  active?: boolean;
  error?: string;
  deleted?: boolean;
  waiter?: { want: 'active' | 'deleted'; resolve: () => void; reject: (e: Error) => void };
}

/**
 * One `GET /v2.1/events` stream dispatching frames by server id: `until(id, 'active')` resolves
 * at the server's ACTIVE state event (also when it came before the caller knew the id).
 */
export class EventFollower {
  private readonly seen = new Map<string, Seen>();
  private req: http.ClientRequest | undefined;
  frames = 0;

  open(endpoint: Endpoint, token: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.req = http.get(
        {
          host: endpoint.host,
          port: endpoint.port,
          path: '/v2.1/events',
          agent: false,
          headers: { accept: 'text/event-stream', 'x-auth-token': token },
        },
        (res) => {
          if (res.statusCode !== 200) {
            reject(new Error(`GET /v2.1/events answered ${res.statusCode}`));
            res.resume();
            return;
          }
          res.setEncoding('utf8');
          let buffer = '';
          let opened = false;
          res.on('data', (chunk: string) => {
            buffer += chunk;
            let end = buffer.indexOf('\n\n');
            while (end >= 0) {
              this.frame(buffer.slice(0, end));
              buffer = buffer.slice(end + 2);
              end = buffer.indexOf('\n\n');
            }
            if (!opened) {
              opened = true; // the stream's opening comment: subscribed
              resolve();
            }
          });
          res.on('error', () => undefined);
        },
      );
      this.req.on('error', reject);
    });
  }

  close(): void {
    this.req?.destroy();
  }

  until(id: string, want: 'active' | 'deleted', timeoutMs = 30_000): Promise<void> {
    const s = this.entry(id);
    if (s.error !== undefined) return Promise.reject(new Error(`server ${id} went to ERROR: ${s.error}`));
    if (want === 'active' && s.active) return Promise.resolve();
    if (want === 'deleted' && s.deleted) {
      this.seen.delete(id);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`server ${id} not ${want} after ${timeoutMs} ms`)),
        timeoutMs,
      );
      s.waiter = {
        want,
        resolve: () => {
          clearTimeout(timer);
          if (want === 'deleted') this.seen.delete(id);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  private entry(id: string): Seen {
    let s = this.seen.get(id);
    if (!s) {
      s = {};
      this.seen.set(id, s);
    }
    return s;
  }

  private frame(text: string): void {
    if (text.startsWith(':')) return;
    this.frames++;
    let type = '';
    let data = '';
    for (const line of text.split('\n')) {
      if (line.startsWith('event: ')) type = line.slice(7);
      else if (line.startsWith('data: ')) data = line.slice(6);
    }
    if (type !== 'instance.state' && type !== 'instance.deleted') return;
    const e = JSON.parse(data) as { instanceId: string; vmState?: string; fault?: { message?: string } };
    const s = this.entry(e.instanceId);
    if (type === 'instance.deleted') s.deleted = true;
    else if (e.vmState === 'active') s.active = true;
    else if (e.vmState === 'error') s.error = 'vmState error';
    const w = s.waiter;
    if (!w) return;
    if (s.error !== undefined) {
      s.waiter = undefined;
      w.reject(new Error(`server ${e.instanceId} went to ERROR`));
    } else if ((w.want === 'active' && s.active) || (w.want === 'deleted' && s.deleted)) {
      s.waiter = undefined;
      w.resolve();
    }
  }
}
