import { HOSTS_BUCKET } from './hosts-bucket.js';
import { busIdSchema, controlPlaneRequestsOf, hostSubjects } from './subjects.js';

/** NATS publish/subscribe allow lists of one user. */
export interface NatsPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

/**
 * The inbox prefix of one agent's connection (`_INBOX_<hostId>`): pass it as `inboxPrefix` to
 * `connectBus`, so the replies to the agent's own requests (JetStream acks) come on subjects its
 * permissions let it subscribe to, and only it.
 */
export function agentInboxPrefix(hostId: string): string {
  return `_INBOX_${busIdSchema.parse(hostId)}`;
}

/**
 * The NATS permissions of one agent: publish and subscribe on its own host's subjects
 * (`nova.agent.<hostId>.>`); publish replies (`_INBOX.>`) but subscribe only to its own inbox
 * (`_INBOX_<hostId>.>`, see {@link agentInboxPrefix}), so it cannot read the replies other agents
 * send the control plane; in the hosts bucket, write only its own key (plus the stream lookup
 * that opening the bucket needs); send requests to control-plane processes only as itself
 * (`nova.cp.*.from.<hostId>.>`: image reads, see `BusRpcClient.callControlPlane`), never
 * subscribe to them. Put them in the server's config for the agent's user; with them an agent
 * cannot publish, subscribe, beat or fetch images as another host.
 */
export function agentPermissions(hostId: string, bucket = HOSTS_BUCKET): NatsPermissions {
  const host = busIdSchema.parse(hostId);
  return {
    publish: [
      hostSubjects(host),
      '_INBOX.>',
      `$KV.${bucket}.${host}`,
      `$JS.API.STREAM.INFO.KV_${bucket}`,
      controlPlaneRequestsOf(host),
    ],
    subscribe: [hostSubjects(host), `${agentInboxPrefix(host)}.>`],
  };
}
