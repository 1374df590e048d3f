// FAKE Hyper-V host: the forced command of the test sshd (scripts/services/start-fake-hyperv-sshd.sh).
//
// This is NOT PowerShell and NOT Hyper-V. It reads the SSH command line the way a Windows host's
// OpenSSH would hand it to `powershell -NoProfile -NonInteractive -EncodedCommand <base64>`,
// decodes the UTF-16LE script and answers only scripts whose text is byte for byte one of the
// driver's fixed scripts (by the sha256 listed in known-scripts.json); their arguments come as one
// line of base64 JSON on stdin, as the scripts read them through `$input`. It emulates what each of those scripts does with the
// Hyper-V cmdlets (New-VM, Set-VMProcessor, Set-VMMemory, Add-VMHardDiskDrive, Start-VM, Stop-VM,
// Suspend-VM, Resume-VM, Save-VM, Get-VM, Remove-VM, New-VHD, Get-FileHash) against a JSON state
// directory, and answers with the scripts' output line (`NOVALFS:<ConvertTo-Json>`, with
// PowerShell 5.1's escaping of < > & ') or with the ErrorRecord shape PowerShell's Hyper-V module
// reports (`NOVALFS-ERROR:<json>` on stderr, exit code 1). Every call is recorded (decoded
// arguments, script name, whether the text was a known one) in <state>/calls.jsonl.
//
// It proves the driver's command building, quoting, parsing, error handling and SSH transport;
// the cmdlets' real behaviour, error ids and timings on a Windows host are modelled, not checked.
//
// SFTP sessions (SSH_ORIGINAL_COMMAND is the sftp-server path) are handed to OpenSSH's own
// sftp-server, so image uploads travel for real.
//
// Test hooks (FAKE only): <state>/faults/<instanceId>.json = { "script": "power", "op"?: "pause",
// "hangMs"?: 5000, "error"?: { ErrorRecord }, "stdout"?: "text", "exitCode"?: 1, "once"?: true }.
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

const STATE = process.env.NOVA_LFS_FAKE_HYPERV_STATE ?? '/var/lib/nova-lfs/fake-hyperv/state';
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';
const PREFIX = 'powershell -NoProfile -NonInteractive -EncodedCommand ';
const HOST = {
  ComputerName: 'FAKE-HYPERV',
  LogicalProcessorCount: 16,
  MemoryCapacity: 64 * 2 ** 30,
  Architecture: 'AMD64',
  OsVersion: '10.0.20348 (FAKE Hyper-V host, not Windows)',
};
const HOST_RESERVED = 2 * 2 ** 30;
/** Simulated cmdlet durations in ms, so that aborts can land inside a call. */
const MS = { newVhd: 15, newVm: 40, set: 5, startVm: 60, stopVm: 30, other: 10 };

process.stdout.on('error', () => undefined); // the client may close the channel: finish the work anyway
process.stderr.on('error', () => undefined);

const original = process.env.SSH_ORIGINAL_COMMAND ?? '';
if (original === SFTP_SERVER || original === 'internal-sftp' || original === 'sftp') {
  const r = spawnSync(SFTP_SERVER, [], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(sleeper, 0, 0, ms);
const sha256 = (data) => createHash('sha256').update(data).digest('hex');
for (const d of ['vms', 'locks', 'faults']) mkdirSync(join(STATE, d), { recursive: true });

function record(entry) {
  const log = join(STATE, 'calls.jsonl');
  try {
    if (statSync(log).size > 16 * 2 ** 20) renameSync(log, `${log}.1`); // keep the log bounded
  } catch {
    // no log yet
  }
  appendFileSync(log, `${JSON.stringify({ at: Date.now(), pid: process.pid, ...entry })}\n`);
}

/** ConvertTo-Json -Compress as Windows PowerShell 5.1 writes it (it escapes < > & '). */
function psJson(value) {
  return JSON.stringify(value).replace(
    /[<>&']/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

class PsError extends Error {
  constructor(
    fqid,
    category,
    message,
    { target = '', exception = 'Microsoft.HyperV.PowerShell.VirtualizationException', activity = '' } = {},
  ) {
    super(message);
    this.record = {
      FullyQualifiedErrorId: fqid,
      CategoryInfo: {
        Category: category,
        Reason: exception.split('.').pop(),
        TargetName: target,
        Activity: activity,
      },
      Exception: { TypeName: exception, Message: message },
    };
  }
}

function answer(result) {
  process.stdout.write(`NOVALFS:${psJson(result)}\n`);
  process.exit(0);
}
function fail(recordObj) {
  process.stderr.write(`NOVALFS-ERROR:${psJson(recordObj)}\n`);
  process.exit(1);
}

// ---- the command line -------------------------------------------------------------------------
if (!original.startsWith(PREFIX) || !/^[A-Za-z0-9+/]+={0,2}$/.test(original.slice(PREFIX.length))) {
  record({
    script: null,
    known: false,
    rejected: 'not a powershell -EncodedCommand line',
    commandSha256: sha256(original),
  });
  const word = original.split(' ')[0] ?? '';
  process.stderr.write(
    `'${word}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n`,
  );
  process.exit(1);
}
const text = Buffer.from(original.slice(PREFIX.length), 'base64').toString('utf16le');
const manifest = JSON.parse(readFileSync(new URL('./known-scripts.json', import.meta.url), 'utf8'));
const textSha = sha256(text);
const script = Object.keys(manifest).find((k) => manifest[k] === textSha);
if (!script) {
  record({
    script: null,
    known: false,
    rejected: 'script text is not one of the driver scripts',
    textSha256: textSha,
  });
  process.stderr.write(
    `FAKE Hyper-V host: script not recognised (sha256 ${textSha}); this FAKE answers only the driver's fixed scripts\n`,
  );
  process.exit(1);
}
// the script's first line: $NovaLfsArgs=[string](@($input) -join '') -- stdin, one base64 line
const stdin = readFileSync(0, 'utf8');
let args;
let argsProblem;
if (!/^[A-Za-z0-9+/]*={0,2}\r?\n?$/.test(stdin)) argsProblem = 'stdin is not one base64 line';
else {
  try {
    args = JSON.parse(Buffer.from(stdin.trim(), 'base64').toString('utf8'));
  } catch {
    argsProblem = 'stdin is not base64 JSON';
  }
}
record({
  script,
  known: true,
  textSha256: textSha,
  args,
  argsProblem,
  stdinBytes: Buffer.byteLength(stdin),
  commandLength: original.length,
});
if (argsProblem) {
  // what the script's ConvertFrom-Json would throw
  fail({
    FullyQualifiedErrorId: 'System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand',
    CategoryInfo: {
      Category: 'NotSpecified',
      Reason: 'ArgumentException',
      TargetName: '',
      Activity: 'ConvertFrom-Json',
    },
    Exception: {
      TypeName: 'System.ArgumentException',
      Message: `Invalid JSON primitive (FAKE: ${argsProblem}).`,
    },
  });
}

// ---- state ------------------------------------------------------------------------------------
const vmFile = (name) => join(STATE, 'vms', `${sha256(String(name))}.json`);
function readVm(name) {
  try {
    return JSON.parse(readFileSync(vmFile(name), 'utf8'));
  } catch {
    return undefined;
  }
}
function writeVm(vm) {
  const tmp = `${vmFile(vm.Name)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(vm));
  renameSync(tmp, vmFile(vm.Name));
}
function allVms() {
  const out = [];
  for (const f of readdirSync(join(STATE, 'vms'))) {
    if (!f.endsWith('.json')) continue;
    try {
      out.push(JSON.parse(readFileSync(join(STATE, 'vms', f), 'utf8')));
    } catch {
      // being replaced right now
    }
  }
  return out;
}
const vmOut = (v) => ({
  Name: v.Name,
  Id: v.Id,
  State: v.State,
  Notes: v.Notes,
  ProcessorCount: v.ProcessorCount,
  MemoryStartup: v.MemoryStartup,
});

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}
/** The pid a lock directory names (0 when it cannot be read: gone, or being replaced). */
function lockOwner(dir) {
  try {
    return Number(readFileSync(join(dir, 'pid'), 'utf8')) || 0;
  } catch {
    return 0;
  }
}
/**
 * The scripts' Global\nova-lfs-<uuid> mutex, as a lock directory (stale when its owner died).
 * The directory appears whole, pid inside, by renaming a private one into place, so a reader never
 * sees a lock without its owner. A stale lock is broken by renaming it aside and removing it only
 * if it still names the dead owner that was read: two processes breaking the same stale lock at
 * once cannot remove the lock a third took in between. Releasing removes the lock only once, and
 * only while it is still this process's.
 */
function lock(id) {
  const locks = join(STATE, 'locks');
  const dir = join(locks, sha256(String(id)));
  const deadline = Date.now() + 120_000;
  for (;;) {
    const mine = join(locks, `.new-${process.pid}-${randomUUID()}`);
    mkdirSync(mine);
    writeFileSync(join(mine, 'pid'), String(process.pid));
    try {
      renameSync(mine, dir);
      // Released once: by the script when it is done, or at exit when an error abandons the mutex.
      // A second removal would delete the lock the next owner has taken since.
      let held = true;
      const release = () => {
        if (!held) return;
        held = false;
        process.off('exit', release);
        if (lockOwner(dir) === process.pid) rmSync(dir, { recursive: true, force: true });
      };
      process.once('exit', release);
      return release;
    } catch (e) {
      rmSync(mine, { recursive: true, force: true });
      if (e.code !== 'EEXIST' && e.code !== 'ENOTEMPTY') throw e;
    }
    const owner = lockOwner(dir);
    if (owner && !alive(owner)) {
      const aside = join(locks, `.stale-${process.pid}-${randomUUID()}`);
      try {
        renameSync(dir, aside);
        if (lockOwner(aside) === owner) rmSync(aside, { recursive: true, force: true });
        else renameSync(aside, dir); // a live lock taken meanwhile: put it back
      } catch {
        // another process broke it first
      }
      continue;
    }
    if (Date.now() > deadline)
      throw new PsError(
        'nova-lfs lock of ' + id + ' is busy',
        'OperationStopped',
        `nova-lfs lock of ${id} is busy`,
        {
          exception: 'System.TimeoutException',
        },
      );
    sleep(5);
  }
}

// ---- cmdlets ----------------------------------------------------------------------------------
const cmdletId = (cmdlet) => `Microsoft.HyperV.PowerShell.Commands.${cmdlet.replace('-', '')}`;
function getVm(name, cmdlet = 'Get-VM') {
  const v = readVm(name);
  if (!v)
    throw new PsError(
      `InvalidParameter,${cmdletId('Get-VM')}`,
      'InvalidArgument',
      `Hyper-V was unable to find a virtual machine with name "${name}".`,
      { target: String(name), activity: cmdlet },
    );
  return v;
}
function invalidState(v, cmdlet) {
  return new PsError(
    `InvalidState,${cmdletId(cmdlet)}`,
    'InvalidOperation',
    `The operation cannot be performed while the virtual machine is in its current state. (${v.Name}: ${v.State})`,
    { target: v.Name, activity: cmdlet },
  );
}
function runningMemory(except) {
  return allVms()
    .filter((v) => v.Name !== except && ['Running', 'Paused'].includes(v.State))
    .reduce((s, v) => s + v.MemoryStartup, 0);
}
function startVm(v) {
  sleep(MS.startVm);
  if (v.State === 'Running') return v;
  if (v.State === 'Paused') throw invalidState(v, 'Start-VM');
  if (runningMemory(v.Name) + v.MemoryStartup > HOST.MemoryCapacity - HOST_RESERVED)
    throw new PsError(
      `OutOfMemory,${cmdletId('Start-VM')}`,
      'ResourceUnavailable',
      `'${v.Name}' could not initialize. Not enough memory in the system to start the virtual machine ${v.Name}.`,
      { target: v.Name, activity: 'Start-VM' },
    );
  v.State = 'Running';
  v.Starts = (v.Starts ?? 0) + 1;
  return v;
}
function stopVm(v) {
  sleep(MS.stopVm);
  if (v.State === 'Saved') v.SavedState = false; // Remove-VMSavedState
  v.State = 'Off';
  return v;
}
function isVhd(path) {
  try {
    const size = statSync(path).size;
    if (size < 512) return false;
    const buf = readFileSync(path).subarray(size - 512, size - 504);
    return buf.toString('ascii') === 'conectix';
  } catch {
    return false;
  }
}
function newVhd(path, parent) {
  sleep(MS.newVhd);
  if (!existsSync(parent))
    throw new PsError(
      'ObjectNotFound,Microsoft.Vhd.PowerShell.Cmdlets.NewVhd',
      'ObjectNotFound',
      `Failed to create the virtual hard disk. The system cannot find the file specified. (${parent})`,
      {
        target: String(parent),
        activity: 'New-VHD',
        exception: 'Microsoft.Vhd.PowerShell.VirtualizationException',
      },
    );
  if (!isVhd(parent))
    throw new PsError(
      'InvalidParameter,Microsoft.Vhd.PowerShell.Cmdlets.NewVhd',
      'InvalidArgument',
      `Failed to create the virtual hard disk. The file or directory is corrupted and unreadable. (${parent})`,
      {
        target: String(parent),
        activity: 'New-VHD',
        exception: 'Microsoft.Vhd.PowerShell.VirtualizationException',
      },
    );
  if (existsSync(path))
    throw new PsError(
      'InvalidParameter,Microsoft.Vhd.PowerShell.Cmdlets.NewVhd',
      'InvalidArgument',
      `Failed to create the virtual hard disk. The file exists. (${path})`,
      {
        target: String(path),
        activity: 'New-VHD',
        exception: 'Microsoft.Vhd.PowerShell.VirtualizationException',
      },
    );
  writeFileSync(path, JSON.stringify({ fake: 'FAKE differencing VHD', parent }));
}

// ---- faults (test hooks) ----------------------------------------------------------------------
// Applied where the real script would be at its first cmdlet: after the per-VM mutex.
const faultKey =
  args?.instanceId ??
  (typeof args?.name === 'string' && args.name.startsWith('nova-') ? args.name.slice(5) : undefined);
function maybeFault() {
  if (!faultKey) return;
  const file = join(STATE, 'faults', `${sha256(String(faultKey))}.json`);
  if (!existsSync(file)) return;
  let fault;
  try {
    fault = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return;
  }
  if (!fault || fault.script !== script || (fault.op !== undefined && fault.op !== args.op)) return;
  if (fault.once) rmSync(file, { force: true });
  record({ script, fault, faultFor: faultKey });
  if (fault.hangMs) sleep(fault.hangMs);
  if (fault.error) fail(fault.error);
  if (fault.stdout !== undefined || fault.stderr !== undefined || fault.exitCode !== undefined) {
    if (fault.stdout) process.stdout.write(fault.stdout);
    if (fault.stderr) process.stderr.write(fault.stderr);
    process.exit(fault.exitCode ?? 0);
  }
}

// ---- the driver's scripts ---------------------------------------------------------------------
try {
  if (!['spawn', 'destroy', 'power', 'rebuild'].includes(script)) maybeFault();
  switch (script) {
    case 'host-report': {
      let size = 0;
      let free = 0;
      try {
        const s = statfsSync(existsSync(args.diskRoot) ? args.diskRoot : STATE);
        size = s.blocks * s.bsize;
        free = s.bavail * s.bsize;
      } catch {
        // no disk facts
      }
      answer({ ...HOST, DiskSize: size, DiskFree: free });
      break;
    }
    case 'list':
      answer({
        VMs: allVms()
          .filter((v) => v.Name.startsWith('nova-'))
          .map(vmOut),
      });
      break;
    case 'get': {
      const v = readVm(args.name);
      answer(v ? { Found: true, VM: vmOut(v) } : { Found: false });
      break;
    }
    case 'file-stat': {
      if (!existsSync(args.path) || !statSync(args.path).isFile()) answer({ Exists: false });
      const st = statSync(args.path);
      answer({ Exists: true, Length: st.size, Sha256: args.hash ? sha256(readFileSync(args.path)) : null });
      break;
    }
    case 'image-commit': {
      const s = sha256(readFileSync(args.part));
      if (s !== args.sha256) {
        rmSync(args.part, { force: true });
        throw new PsError('NovaLfsImageHashMismatch', 'InvalidData', `uploaded image hashes to ${s}`, {
          target: String(args.path),
          exception: 'Microsoft.PowerShell.Commands.WriteErrorException',
        });
      }
      if (existsSync(args.path)) rmSync(args.part, { force: true });
      else renameSync(args.part, args.path);
      answer({ Committed: true, Sha256: s });
      break;
    }
    case 'file-remove':
      rmSync(args.path, { force: true });
      answer({ Removed: true });
      break;
    case 'spawn': {
      const release = lock(args.instanceId);
      maybeFault();
      if (readVm(args.name))
        throw new PsError('NovaLfsVMExists', 'ResourceExists', `a VM named ${args.name} exists`, {
          target: String(args.name),
          exception: 'Microsoft.PowerShell.Commands.WriteErrorException',
        });
      let v;
      try {
        newVhd(args.diskPath, args.parentPath);
        sleep(MS.newVm);
        const mem = args.memoryBytes;
        if (!Number.isInteger(mem) || mem < 32 * 2 ** 20 || mem % (2 * 2 ** 20) !== 0)
          throw new PsError(
            `InvalidParameter,${cmdletId('New-VM')}`,
            'InvalidArgument',
            `Invalid startup memory amount ${mem}.`,
            {
              target: String(args.name),
              activity: 'New-VM',
            },
          );
        v = {
          Name: args.name,
          Id: randomUUID(),
          State: 'Off',
          Notes: '',
          ProcessorCount: 1,
          MemoryStartup: mem,
          HardDrives: [],
          Generation: 1,
        };
        writeVm(v);
        sleep(MS.set);
        v.Notes = args.notes;
        if (!Number.isInteger(args.vcpus) || args.vcpus < 1 || args.vcpus > HOST.LogicalProcessorCount)
          throw new PsError(
            `InvalidParameter,${cmdletId('Set-VMProcessor')}`,
            'InvalidArgument',
            `The virtual machine cannot have ${args.vcpus} virtual processors; the host has ${HOST.LogicalProcessorCount}.`,
            { target: String(args.name), activity: 'Set-VMProcessor' },
          );
        v.ProcessorCount = args.vcpus;
        v.HardDrives = [
          { ControllerType: 'IDE', ControllerNumber: 0, ControllerLocation: 0, Path: args.diskPath },
        ];
        writeVm(v);
        startVm(v);
        writeVm(v);
      } catch (e) {
        if (v) rmSync(vmFile(v.Name), { force: true });
        rmSync(args.diskPath, { force: true });
        throw e;
      }
      release();
      answer({ VM: vmOut(v) });
      break;
    }
    case 'destroy': {
      const release = lock(args.instanceId);
      maybeFault();
      let v;
      try {
        v = getVm(args.name);
      } catch (e) {
        rmSync(args.diskPath, { force: true });
        throw e;
      }
      if (v.State !== 'Off') stopVm(v);
      sleep(MS.other);
      rmSync(vmFile(v.Name), { force: true });
      for (const d of v.HardDrives ?? [])
        if (d.Path?.toLowerCase().startsWith(String(args.diskRoot).toLowerCase()))
          rmSync(d.Path, { force: true });
      release();
      answer({ Removed: true });
      break;
    }
    case 'power': {
      const release = lock(args.instanceId);
      maybeFault();
      const v = getVm(args.name);
      sleep(MS.other);
      switch (args.op) {
        case 'powerOff':
          if (v.State !== 'Off') stopVm(v);
          break;
        case 'powerOn':
          if (v.State === 'Paused') v.State = 'Running';
          else startVm(v);
          break;
        case 'pause':
          if (v.State !== 'Running') throw invalidState(v, 'Suspend-VM');
          v.State = 'Paused';
          break;
        case 'unpause':
          if (v.State !== 'Paused') throw invalidState(v, 'Resume-VM');
          v.State = 'Running';
          break;
        case 'suspend':
          if (v.State !== 'Running' && v.State !== 'Paused') throw invalidState(v, 'Save-VM');
          v.State = 'Saved';
          break;
        case 'resume':
          startVm(v);
          break;
        case 'rebootHard':
          if (v.State === 'Running') v.Resets = (v.Resets ?? 0) + 1;
          else {
            stopVm(v);
            startVm(v);
          }
          break;
        case 'rebootSoft':
          stopVm(v);
          startVm(v);
          break;
        default:
          throw new PsError('NovaLfsUnknownOperation', 'InvalidArgument', `unknown operation ${args.op}`, {
            exception: 'Microsoft.PowerShell.Commands.WriteErrorException',
          });
      }
      writeVm(v);
      release();
      answer({ VM: vmOut(v) });
      break;
    }
    case 'rebuild': {
      const release = lock(args.instanceId);
      maybeFault();
      const v = getVm(args.name);
      stopVm(v);
      v.HardDrives = [];
      writeVm(v);
      rmSync(args.diskPath, { force: true });
      newVhd(args.diskPath, args.parentPath);
      v.HardDrives = [
        { ControllerType: 'IDE', ControllerNumber: 0, ControllerLocation: 0, Path: args.diskPath },
      ];
      v.Notes = args.notes;
      v.Rebuilds = (v.Rebuilds ?? 0) + 1;
      startVm(v);
      writeVm(v);
      release();
      answer({ VM: vmOut(v) });
      break;
    }
    default:
      throw new PsError(
        'FakeScriptNotEmulated',
        'NotImplemented',
        `FAKE Hyper-V host: ${script} is not emulated`,
      );
  }
} catch (e) {
  if (e instanceof PsError) fail(e.record);
  process.stderr.write(`FAKE Hyper-V host internal error: ${e?.stack ?? e}\n`);
  process.exit(1);
}
