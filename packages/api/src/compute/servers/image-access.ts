import type { Image } from '@nova-lfs/core';
import { badRequest } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import type { AuthContext } from '../../http/auth-context.js';
import { ImageCatalog } from '../../image/image-catalog.js';

/** The last path segment of a reference that may be a URL (`http://.../images/x` -> `x`). */
export function idOfRef(ref: string): string {
  const cut = ref.replace(/\/+$/, '');
  const at = cut.lastIndexOf('/');
  return at >= 0 ? cut.slice(at + 1) : cut;
}

/**
 * The image a server may boot from, as Nova asks Glance: it exists, the caller may see it
 * (public, community, the caller's project's, or the operator's; administrators see all) and it
 * is active. Another project's private image is "not found", as Glance answers.
 * @throws ApiFault 400 naming `field`
 */
export async function bootableImage(
  services: ApiServices,
  auth: AuthContext,
  ref: string,
  field: string,
): Promise<Image> {
  const id = idOfRef(ref);
  // built only when thrown: an error captures a stack trace, too dear for every request
  const missing = () =>
    badRequest(`Invalid imageRef provided: image ${ref.slice(0, 255)} could not be found.`, field);
  const image = await services.engine.images.get(id).catch(() => undefined);
  if (!image) throw missing();
  const glance = await new ImageCatalog(services).ofEngineImage(image);
  if (!services.policy.enforce('context_is_admin', auth)) {
    const everyone = glance.visibility === 'public' || glance.visibility === 'community';
    if (!everyone && glance.owner !== null && glance.owner !== auth.projectId) throw missing();
  }
  if (glance.status !== 'active') throw badRequest(`Image ${id} is not active.`, field);
  return image;
}
