import {
  type ApiHarness,
  type ApiHarnessOptions,
  apiHarness,
} from '../../testing/api-harness.test-helper.js';
import { computeResourceRouteSpecs, migrateComputeResources } from './index.js';

/** The API harness serving the compute resource routes, with their tables migrated. */
export async function resourcesHarness(options: ApiHarnessOptions = {}): Promise<ApiHarness> {
  const h = await apiHarness((services) => computeResourceRouteSpecs(services), options);
  await migrateComputeResources(h.services.db);
  return h;
}

/** Microversion headers for a request. */
export const mv = (v: string) => ({ 'openstack-api-version': `compute ${v}` });
