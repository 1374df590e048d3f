import { HOSTS_BUCKET } from './hosts-bucket.js';
import { busIdSchema, hostSubjects } from './subjects.js';

/** NATS publish/subscribe allow lists of one user. */
export interface NatsPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

/**
 * The NATS permissions of one agent: its own host's subjects (`nova.agent.<hostId>.>`), replies
 * (`_INBOX.>`), and in the hosts bucket only its own key (plus the stream lookup that opening the
 * bucket needs). Put them in the server's config for the agent's user; with them an agent cannot
 * publish, subscribe or beat as another host.
 */
export function agentPermissions(hostId: string, bucket = HOSTS_BUCKET): NatsPermissions {
  const host = busIdSchema.parse(hostId);
  return {
    publish: [hostSubjects(host), '_INBOX.>', `$KV.${bucket}.${host}`, `$JS.API.STREAM.INFO.KV_${bucket}`],
    subscribe: [hostSubjects(host), '_INBOX.>'],
  };
}
