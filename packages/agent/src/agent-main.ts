import { isNovaError } from '@nova-lfs/core';
import { agentUsage, parseAgentArgs, runAgent } from './agent-command.js';

async function serve(argv: readonly string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${agentUsage}\n`);
    return;
  }
  const options = parseAgentArgs(argv);
  // The handlers go in before the agent starts: a SIGTERM sent as soon as the ready line is read
  // must stop the agent cleanly, not kill it by the default action before they exist. A signal
  // that arrives while it starts is acted on once it serves.
  let requested: string | undefined;
  let onSignal = (signal: string) => {
    requested ??= signal;
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  const running = await runAgent(options);
  const { report } = running;
  process.stdout.write(
    `${JSON.stringify({
      event: 'agent.ready',
      hostId: options.hostId,
      driver: options.driver,
      pid: process.pid,
      bootId: report.bootId,
      recovered: report.recovered.map((g) => g.instanceId),
      heartbeating: report.heartbeating,
    })}\n`,
  );
  let stopping = false;
  onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    running.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`${JSON.stringify({ event: 'agent.stop-failed', signal, error: String(e) })}\n`);
        process.exit(1);
      },
    );
  };
  if (requested) onSignal(requested);
}

/**
 * Runs the agent command with `argv` (its arguments, without the command name) in this process:
 * prints one JSON line `{"event":"agent.ready",...}` on stdout once it serves and stops cleanly
 * (deregistering its heartbeat) on SIGTERM or SIGINT. On bad arguments it exits 2 with
 * `NLFS_AGENT_ARGUMENTS` naming the option; on any other start failure 1. Used by
 * `nova-lfs-agent` and by `nova-lfs agent`.
 */
export function agentMain(argv: readonly string[]): Promise<void> {
  return serve(argv).catch((e: unknown) => {
    const fields = isNovaError(e) ? { code: e.code, details: e.details } : {};
    process.stderr.write(
      `${JSON.stringify({ event: 'agent.failed', error: (e as Error)?.message ?? String(e), ...fields })}\n`,
    );
    if (isNovaError(e, 'NLFS_AGENT_ARGUMENTS')) process.stderr.write(`${agentUsage}\n`);
    process.exit(isNovaError(e, 'NLFS_AGENT_ARGUMENTS') ? 2 : 1);
  });
}
