import { describe, expect, it } from 'vitest';
import { InvalidStateError } from '../errors.js';
import { instanceActionNames, instantActionNames, isInstantAction, taskActionNames } from './action.js';
import type { vmStates } from './states.js';
import { assertActionAllowed, isActionAllowed, outcomeOf, transitions } from './transitions.js';

describe('transition table', () => {
  it('accepts the actions Nova accepts from each stable state', () => {
    const allowed = (vmState: (typeof vmStates)[number]) =>
      taskActionNames.filter((a) => isActionAllowed(a, { vmState, taskState: null }));
    expect(allowed('active').sort()).toEqual([
      'attach_interface',
      'attach_volume',
      'delete',
      'detach_interface',
      'detach_volume',
      'evacuate',
      'live-migration',
      'migrate',
      'pause',
      'reboot',
      'reboot_hard',
      'rebuild',
      'rescue',
      'resize',
      'shelve',
      'snapshot',
      'stop',
      'suspend',
    ]);
    expect(allowed('stopped').sort()).toEqual([
      'attach_interface',
      'attach_volume',
      'delete',
      'detach_interface',
      'detach_volume',
      'evacuate',
      'migrate',
      'reboot_hard',
      'rebuild',
      'rescue',
      'resize',
      'shelve',
      'snapshot',
      'start',
    ]);
    expect(allowed('paused').sort()).toEqual([
      'attach_interface',
      'attach_volume',
      'delete',
      'detach_interface',
      'detach_volume',
      'live-migration',
      'reboot_hard',
      'shelve',
      'snapshot',
      'stop',
      'unpause',
    ]);
    expect(allowed('suspended').sort()).toEqual([
      'delete',
      'reboot_hard',
      'resume',
      'shelve',
      'snapshot',
      'stop',
    ]);
    expect(allowed('error').sort()).toEqual([
      'confirmResize',
      'delete',
      'evacuate',
      'reboot_hard',
      'rebuild',
      'rescue',
      'revertResize',
      'stop',
    ]);
    expect(allowed('resized').sort()).toEqual(['confirmResize', 'delete', 'revertResize']);
    expect(allowed('shelved').sort()).toEqual(['delete', 'shelveOffload', 'unshelve']);
    expect(allowed('shelved_offloaded').sort()).toEqual(['delete', 'unshelve']);
    expect(allowed('rescued').sort()).toEqual(['delete', 'unrescue']);
    expect(allowed('building')).toEqual(['delete']);
    expect(allowed('deleted')).toEqual([]);
  });

  it('accepts only confirm, revert and delete while a resize waits for its end', () => {
    const move = { sourceHostId: 'a' } as never;
    for (const vmState of ['resized', 'error'] as const) {
      const ok = taskActionNames.filter((a) => isActionAllowed(a, { vmState, taskState: null, move }));
      expect(ok.sort()).toEqual(['confirmResize', 'delete', 'revertResize']);
    }
  });

  it('refuses every action but delete while a task runs', () => {
    for (const action of taskActionNames) {
      const ok = isActionAllowed(action, { vmState: 'active', taskState: 'rebooting' });
      expect(ok, action).toBe(action === 'delete');
    }
  });

  it('raises a typed conflict carrying the current states', () => {
    try {
      assertActionAllowed('start', { id: 'i-1', vmState: 'active', taskState: null, powerState: 'running' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidStateError);
      const err = e as InvalidStateError;
      expect(err.code).toBe('NLFS_INVALID_STATE');
      expect(err.details).toEqual({
        instanceId: 'i-1',
        action: 'start',
        vmState: 'active',
        taskState: null,
        powerState: 'running',
      });
    }
  });

  it("gives each action a distinct task state (evacuate shares rebuild's, migrate resize's, as in Nova) and a consistent outcome", () => {
    const tasks = Object.entries(transitions)
      .filter(([name]) => name !== 'evacuate' && name !== 'migrate')
      .map(([, t]) => t.task);
    expect(transitions.migrate.task).toBe('resize_prep');
    expect(new Set(tasks).size).toBe(tasks.length);
    expect(transitions.evacuate.task).toBe('rebuilding');
    expect(outcomeOf('evacuate', 'stopped')).toEqual({ vmState: 'stopped', powerState: 'shutdown' });
    expect(outcomeOf('evacuate', 'error')).toEqual({ vmState: 'active', powerState: 'running' });
    expect(outcomeOf('rebuild', 'stopped')).toEqual({ vmState: 'stopped', powerState: 'shutdown' });
    expect(outcomeOf('rebuild', 'active')).toEqual({ vmState: 'active', powerState: 'running' });
    expect(outcomeOf('suspend', 'active')).toEqual({ vmState: 'suspended', powerState: 'suspended' });
  });
});

describe('instant actions', () => {
  it('have no row in the transition table; every task action has one', () => {
    expect(instantActionNames).toEqual(['lock', 'unlock']);
    for (const action of instantActionNames) {
      expect(Object.hasOwn(transitions, action), action).toBe(false);
      expect(isInstantAction(action)).toBe(true);
    }
    expect(Object.keys(transitions).sort()).toEqual([...taskActionNames].sort());
    for (const action of taskActionNames) expect(isInstantAction(action), action).toBe(false);
    expect(instanceActionNames).toEqual([...taskActionNames, ...instantActionNames]);
  });
});
