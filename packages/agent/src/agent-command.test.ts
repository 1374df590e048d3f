import { describe, expect, it } from 'vitest';
import { parseAgentArgs } from './agent-command.js';
import { AgentErrorCode } from './errors.js';

const fail = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  try {
    parseAgentArgs(argv, env);
  } catch (e) {
    return e;
  }
  throw new Error('expected a refusal');
};

describe('parseAgentArgs', () => {
  it('reads every option, with defaults', () => {
    expect(parseAgentArgs(['--host-id', 'node-1'], {})).toEqual({
      hostId: 'node-1',
      driver: 'fake',
      natsUrl: 'nats://127.0.0.1:4222',
      stateDir: '.nova-lfs/agent-node-1',
      heartbeatMs: 10_000,
      fakeLatencyMs: 0,
      fakeAcquireImages: false,
      kvmAccel: false,
    });
    expect(
      parseAgentArgs(
        [
          '--host-id=n2',
          '--driver',
          'docker',
          '--nats-url',
          'nats://127.0.0.1:5222',
          '--nats-user',
          'agent-n2',
          '--state-dir',
          '/tmp/x',
          '--heartbeat-ms',
          '250',
          '--docker-socket',
          '/run/d.sock',
        ],
        { NOVA_LFS_NATS_PASSWORD: 'secret' },
      ),
    ).toMatchObject({
      hostId: 'n2',
      driver: 'docker',
      natsUrl: 'nats://127.0.0.1:5222',
      natsUser: 'agent-n2',
      natsPassword: 'secret',
      stateDir: '/tmp/x',
      heartbeatMs: 250,
      dockerSocket: '/run/d.sock',
    });
    expect(
      parseAgentArgs([
        '--host-id',
        'k',
        '--driver',
        'kvm',
        '--kvm-uri',
        'qemu+unix:///system?socket=/s',
        '--kvm-accel',
      ]),
    ).toMatchObject({ driver: 'kvm', kvmUri: 'qemu+unix:///system?socket=/s', kvmAccel: true });
    expect(parseAgentArgs(['--host-id', 'l', '--driver', 'lxc', '--lxc-path', '/srv/lxc'])).toMatchObject({
      driver: 'lxc',
      lxcPath: '/srv/lxc',
    });
    expect(parseAgentArgs(['--host-id', 'h'], { NOVA_LFS_DATA_DIR: '/var/lib/n' }).stateDir).toBe(
      '/var/lib/n/agent-h',
    );
  });

  it('refuses bad arguments naming the option', () => {
    expect(fail([])).toMatchObject({ code: AgentErrorCode.Arguments, details: { option: 'host-id' } });
    expect(fail(['--host-id', 'a.b'])).toMatchObject({ details: { option: 'host-id' } });
    expect(fail(['--host-id', 'a', '--driver', 'xen'])).toMatchObject({ details: { option: 'driver' } });
    expect(fail(['--host-id', 'a', '--driver', 'kvm; rm -rf /'])).toMatchObject({
      details: { option: 'driver' },
    });
    expect(fail(['--host-id', 'a', '--heartbeat-ms=-1'])).toMatchObject({
      details: { option: 'heartbeat-ms' },
    });
    expect(fail(['--host-id', 'a', '--fake-vcpus', 'many'])).toMatchObject({
      details: { option: 'fake-vcpus' },
    });
    expect(fail(['--host-id', 'a', '--nats-password', 'p'])).toMatchObject({
      details: { option: 'nats-user' },
    });
    expect(fail(['--host-id', 'a', '--bogus'])).toMatchObject({ details: { option: 'argv' } });
  });
});
