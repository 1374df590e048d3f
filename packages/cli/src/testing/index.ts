/**
 * Test helpers of `@nova-lfs/cli`: start `nova-lfs serve` as a child process (a distributed
 * control plane with {@link controlPlaneArgs}), and log its administrator in.
 * @packageDocumentation
 */
export {
  type AdminToken,
  type ControlPlaneArgsOptions,
  controlPlaneArgs,
  issueAdminToken,
  type ServeProcess,
  serveCommand,
  startServe,
} from './serve-process.js';
