/**
 * Test helpers of `@nova-lfs/agent`: start `nova-lfs-agent` as a child process (kill -9 it,
 * restart it) for tests of a control plane against real agents.
 * @packageDocumentation
 */
export {
  type AgentProcess,
  type AgentProcessOptions,
  type AgentReady,
  agentCommand,
  startAgentProcess,
} from './agent-process.js';
