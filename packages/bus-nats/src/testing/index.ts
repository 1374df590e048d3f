/**
 * Test helpers of `@nova-lfs/bus-nats`: a probe for the shared nats-server and a launcher of
 * private `nats-server` children (own port, config, users and permissions).
 * @packageDocumentation
 */
export {
  defaultNatsUrl,
  freeLoopbackPort,
  type NatsTestServer,
  type NatsTestServerOptions,
  type NatsTestUser,
  natsAvailable,
  natsTestConfig,
  startNatsCommand,
  startNatsServer,
} from './nats-server.js';
