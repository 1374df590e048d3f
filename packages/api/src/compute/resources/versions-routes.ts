import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { formatMicroversion, maxMicroversion, minMicroversion } from '../microversion.js';
import { beginCompute } from './resource-common.js';

/** The `v2.1` entry Nova shows in both version documents. */
function v21(selfHref: string) {
  return {
    id: 'v2.1',
    status: 'CURRENT',
    version: formatMicroversion(maxMicroversion),
    min_version: formatMicroversion(minMicroversion),
    updated: '2013-07-23T11:33:21Z',
    links: [{ rel: 'self', href: selfHref }],
  };
}

/** `GET /` (300, the versions list) and `GET /v2.1` (the current version), unauthenticated. */
export function versionRoutes(services: ApiServices): RouteSpec[] {
  const compute = services.urls.compute.replace(/\/+$/, '');
  const root = compute.replace(/\/v2(\.1)?$/, '');
  const versionDocument = () => {
    const doc = v21(`${compute}/`);
    return {
      version: {
        ...doc,
        links: [...doc.links, { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' }],
        'media-types': [
          { base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' },
        ],
      },
    };
  };
  return [
    route({
      method: 'GET',
      url: '/',
      service: 'compute',
      summary: 'The compute API versions',
      auth: 'none',
      handler: async () => ({
        status: 300,
        body: {
          versions: [
            {
              id: 'v2.0',
              status: 'SUPPORTED',
              version: '',
              min_version: '',
              updated: '2011-01-21T11:33:21Z',
              links: [{ rel: 'self', href: `${root}/v2/` }],
            },
            v21(`${compute}/`),
          ],
        },
      }),
    }),
    route({
      method: 'GET',
      url: '/v2.1',
      service: 'compute',
      summary: 'The compute API v2.1 version document',
      auth: 'none',
      handler: async ({ request, reply }) => {
        beginCompute(request, reply);
        return { status: 200, body: versionDocument() };
      },
    }),
  ];
}
