import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { createServer, serversHarness, waitForStatus } from './servers.test-helper.js';

interface Frame {
  readonly id: number;
  readonly event: string;
  readonly data: Record<string, unknown>;
}

/** Reads server-sent event frames from a live stream until `until` says stop (or 10 s pass). */
async function readFrames(
  url: string,
  token: string,
  until: (frames: Frame[]) => boolean,
  headers: Record<string, string> = {},
): Promise<Frame[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  const response = await fetch(url, { headers: { 'x-auth-token': token, ...headers }, signal: abort.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/event-stream');
  const frames: Frame[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let cut = buffered.indexOf('\n\n');
      while (cut >= 0) {
        const text = buffered.slice(0, cut);
        buffered = buffered.slice(cut + 2);
        cut = buffered.indexOf('\n\n');
        const fields = Object.fromEntries(
          text
            .split('\n')
            .filter((l) => !l.startsWith(':') && l.includes(': '))
            .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
        );
        if (fields.id)
          frames.push({ id: Number(fields.id), event: fields.event!, data: JSON.parse(fields.data!) });
      }
      if (until(frames)) break;
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return frames;
}

describe('GET /v2.1/events', () => {
  let h: ApiHarness;
  let base: string;
  beforeAll(async () => {
    h = await serversHarness();
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const address = h.app.server.address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(() => h.close());

  it("streams the project's events live, without host ids for members, and resumes from a cursor", async () => {
    const aliceId = await createServer(h, 'alice', { name: 'streamed' });
    await waitForStatus(h, aliceId, 'ACTIVE');
    const bobId = await createServer(h, 'bob', { name: 'other' });
    await waitForStatus(h, bobId, 'ACTIVE');
    const activeOf = (id: string) => (frames: Frame[]) =>
      frames.some(
        (f) => f.data.instanceId === id && f.event === 'instance.state' && f.data.vmState === 'active',
      );
    // replay from the start of the log: alice sees her server's whole life and nothing of bob's
    const replay = await readFrames(`${base}/v2.1/events?since=0`, 'alice', activeOf(aliceId));
    expect(replay.map((f) => f.event)).toContain('instance.created');
    expect(replay.every((f) => f.data.instanceId === aliceId)).toBe(true);
    for (const f of replay) {
      expect(f.data.hostId).toBeUndefined();
      expect(JSON.stringify(f.data)).not.toMatch(/"host-\d"/);
    }
    expect(replay.map((f) => f.id)).toEqual([...replay.map((f) => f.id)].sort((a, b) => a - b));
    // live, resuming after the last seen event with Last-Event-ID
    const cursor = replay.at(-1)!.id;
    const liveRead = readFrames(
      `${base}/v2.1/events`,
      'alice',
      (fs) => fs.some((f) => f.event === 'instance.deleted'),
      {
        'last-event-id': String(cursor),
      },
    );
    const r = await h.call('alice', { method: 'DELETE', url: `/v2.1/servers/${aliceId}` });
    expect(r.statusCode).toBe(204);
    const live = await liveRead;
    expect(live.every((f) => f.id > cursor)).toBe(true);
    expect(live.map((f) => f.event)).toContain('instance.deleted');
    // an administrator sees hosts
    const adminFrames = await readFrames(
      `${base}/v2.1/events?since=0&project_id=p2`,
      'admin',
      activeOf(bobId),
    );
    expect(adminFrames.some((f) => typeof f.data.hostId === 'string')).toBe(true);
    expect(adminFrames.every((f) => f.data.instanceId === bobId)).toBe(true);
  });

  it('refuses a bad cursor and a missing token', async () => {
    const bad = await fetch(`${base}/v2.1/events`, {
      headers: { 'x-auth-token': 'alice', 'last-event-id': 'x;DROP' },
    });
    expect(bad.status).toBe(400);
    const anonymous = await fetch(`${base}/v2.1/events`);
    expect(anonymous.status).toBe(401);
  });
});
