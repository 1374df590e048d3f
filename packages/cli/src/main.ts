#!/usr/bin/env node
import 'reflect-metadata';
import { agentMain } from '@nova-lfs/agent';
import { runServe } from './serve/serve-command.js';
import { parseServeArgs, serveHelp, UsageError } from './serve/serve-options.js';
import { volumeMain } from './volume/volume-command.js';

const usage = `Usage: nova-lfs <command> [options]

Commands:
  serve     run the OpenStack-compatible API (identity, compute, image) over the engine
  agent     run the compute agent of one host (fake, docker, kvm or lxc) over NATS
  volume    create, list and delete the volumes serve --volumes attaches

Run "nova-lfs <command> --help" for a command's options.`;

async function main(argv: readonly string[]): Promise<number | 'running'> {
  const [command, ...rest] = argv;
  if (command === 'agent') {
    // the agent keeps running until SIGTERM/SIGINT and exits by itself
    await agentMain(rest);
    return 'running';
  }
  if (command === 'volume')
    return volumeMain(rest, { print: (line) => console.log(line), error: (line) => console.error(line) });
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(usage);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'serve') {
    console.error(`nova-lfs: unknown command "${command}"\n\n${usage}`);
    return 2;
  }
  let options: ReturnType<typeof parseServeArgs>;
  try {
    options = parseServeArgs(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`nova-lfs serve: ${e.message}\nRun "nova-lfs serve --help" for the options.`);
      return 2;
    }
    throw e;
  }
  if (options === 'help') {
    console.log(serveHelp);
    return 0;
  }
  // The handlers go in before the service starts (see the agent's): a SIGTERM sent as soon as
  // a ready line is read stops it cleanly; one that arrives while it starts, once it serves.
  let signalled: (signal: string) => void;
  const stopSignal = new Promise<string>((resolve) => {
    signalled = resolve;
  });
  process.once('SIGINT', () => signalled('SIGINT'));
  process.once('SIGTERM', () => signalled('SIGTERM'));
  const service = await runServe(options, { print: (line) => console.log(line) });
  const signal = await stopSignal;
  console.log(`nova-lfs serve: ${signal}, stopping`);
  await service.stop().catch((e: unknown) => {
    console.error('nova-lfs serve: stopping failed', e);
  });
  console.log('nova-lfs serve: stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 'running') process.exit(code);
  },
  (e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    console.error(`nova-lfs: ${message}`);
    process.exit(1);
  },
);
