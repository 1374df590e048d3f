import type { PolicyRuleDefault } from '../policy/policy-engine.js';

const admin = 'rule:context_is_admin';
const ownerMember = `${admin} or (role:member and project_id:%(project_id)s)`;
const ownerReader = `${admin} or (role:reader and project_id:%(project_id)s)`;

/**
 * Glance's default rules (Zed, new defaults) for the image routes. The target's `project_id` is
 * the image's owner (for `get_images`: the caller's project), `member_id` is the caller's project
 * when the image's visibility lets every project see it (public, community). Glance writes that
 * last part as `'public':%(visibility)s or 'community':%(visibility)s`, which this policy engine's
 * check syntax has no form for; the route computes it instead.
 */
export const imagePolicies: Readonly<Record<string, PolicyRuleDefault>> = {
  get_image: {
    check: `${admin} or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s))`,
    description: 'Show an image.',
  },
  get_images: { check: ownerReader, description: 'List images.' },
  add_image: { check: ownerMember, description: 'Create an image (owned by the caller’s project).' },
  modify_image: { check: ownerMember, description: 'Update an image, its tags and properties.' },
  delete_image: { check: ownerMember, description: 'Delete an image.' },
  upload_image: { check: ownerMember, description: 'Upload the data of an image.' },
  download_image: {
    check: `${admin} or (role:member and (project_id:%(project_id)s or project_id:%(member_id)s))`,
    description: 'Download the data of an image.',
  },
  publicize_image: { check: admin, description: 'Make an image public.' },
  communitize_image: { check: ownerMember, description: 'Make an image visible to the community.' },
};
