import type { ComputeEngine, Instance } from '@nova-lfs/core';
import { migrateImageTables } from '../../image/index.js';
import type { ApiHarness, ApiHarnessOptions } from '../../testing/api-harness.test-helper.js';
import { apiHarness } from '../../testing/api-harness.test-helper.js';
import { computeResourceRouteSpecs, migrateComputeResources } from '../resources/index.js';
import { computeServerRouteSpecs, migrateServers, type ServerRoutesOptions } from './index.js';

/** The API harness serving the servers and compute resource routes, tables migrated. */
export async function serversHarness(
  options: ApiHarnessOptions & { servers?: ServerRoutesOptions } = {},
): Promise<ApiHarness> {
  const h = await apiHarness(
    (services) => [
      ...computeResourceRouteSpecs(services),
      ...computeServerRouteSpecs(services, options.servers),
    ],
    options,
  );
  await migrateComputeResources(h.services.db);
  await migrateServers(h.services.db);
  await migrateImageTables(h.services.db);
  return h;
}

/** `POST /servers/{id}/action` with `payload` as `token`. */
export const action = (
  h: ApiHarness,
  token: string,
  id: string,
  payload: unknown,
  headers: Record<string, string> = {},
) =>
  h.call(token, { method: 'POST', url: `/v2.1/servers/${id}/action`, payload: payload as object, headers });

/** Microversion headers. */
export const mv = (v: string) => ({
  'openstack-api-version': `compute ${v}`,
  'x-openstack-nova-api-version': v,
});

/** Creates a server as `token` and returns its id. */
export async function createServer(
  h: ApiHarness,
  token: string,
  server: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Promise<string> {
  const r = await h.call(token, {
    method: 'POST',
    url: '/v2.1/servers',
    payload: { server: { name: 'vm', imageRef: 'cirros', flavorRef: 'm1.small', ...server }, ...extra },
  });
  if (r.statusCode !== 202) throw new Error(`create answered ${r.statusCode}: ${r.body}`);
  return r.json().server.id as string;
}

/**
 * Waits until the server shows `status` through the API, woken by the engine's events for it
 * (no sleeping); fails after 10 s.
 */
export async function waitForStatus(
  h: ApiHarness,
  id: string,
  status: string,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const next = nextEvent(h.services.engine, id, 2_000);
    const r = await h.call('admin', { method: 'GET', url: `/v2.1/servers/${id}` });
    if (r.statusCode === 200 && r.json().server.status === status) return r.json().server;
    if (status === 'DELETED' && r.statusCode === 404) return {};
    if (Date.now() > deadline) throw new Error(`server ${id} did not reach ${status}: ${r.body}`);
    await next;
  }
}

/**
 * Waits until the engine's record of the server satisfies `done` (e.g. a detach accepted with 202
 * has finished), woken by the engine's events for it (no sleeping); fails after 10 s.
 */
export async function waitForInstance(
  engine: ComputeEngine,
  id: string,
  done: (instance: Instance) => boolean,
): Promise<Instance> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const next = nextEvent(engine, id, 2_000);
    const instance = await engine.get(id);
    if (done(instance)) return instance;
    if (Date.now() > deadline)
      throw new Error(`server ${id} did not reach the state: ${JSON.stringify(instance)}`);
    await next;
  }
}

/** Resolves at the server's next engine event, or after `ms` without one. */
function nextEvent(engine: ComputeEngine, id: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      resolve();
    }, ms);
    const sub = engine.watch(id).subscribe({
      next: () => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve();
      },
      complete: () => {
        clearTimeout(timer);
        resolve();
      },
    });
  });
}
