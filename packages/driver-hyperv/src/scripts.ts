import { createHash } from 'node:crypto';

/**
 * The driver's fixed PowerShell scripts. Each is sent as the body of one
 * `powershell -NoProfile -NonInteractive -EncodedCommand <base64 UTF-16LE>` call (see
 * `command.ts`), so the command line of a script is always the same string. The values a script
 * uses (VM names, paths, notes, sizes) travel on its stdin as one line of base64 JSON, which the
 * script reads through `$input` and decodes with `ConvertFrom-Json`: they reach cmdlets as
 * parameter values, never as code.
 *
 * Output: one line `NOVALFS:<ConvertTo-Json -Compress>` on stdout. Errors: the caught
 * `ErrorRecord` as `NOVALFS-ERROR:<json>` (FullyQualifiedErrorId, CategoryInfo, exception type and
 * message) on stderr and exit code 1.
 *
 * Each script that changes a VM holds the named mutex `Global\nova-lfs-<instance uuid>` so that a
 * destroy sent after an aborted spawn (whose PowerShell may still run on the host after the SSH
 * channel closed) waits for it and then removes what it made.
 *
 * Not verified against real PowerShell or Hyper-V here (there is none): see the README.
 */

/** Helpers a body may use; each script carries only those it names. */
const HELPERS = {
  out: String.raw`function Out-NovaLfs($o){[Console]::Out.WriteLine('NOVALFS:'+(ConvertTo-Json -InputObject $o -Depth 6 -Compress))}`,
  lock: String.raw`function Lock-NovaLfs($id){$m=[Threading.Mutex]::new($false,'Global\nova-lfs-'+$id);try{if(-not $m.WaitOne(120000)){throw [TimeoutException]::new('nova-lfs lock of '+$id+' is busy')}}catch [Threading.AbandonedMutexException]{};$m}`,
  vm: String.raw`function Vm-NovaLfs($v){[ordered]@{Name=$v.Name;Id=[string]$v.Id;State=[string]$v.State;Notes=[string]$v.Notes;ProcessorCount=$v.ProcessorCount;MemoryStartup=$v.MemoryStartup}}`,
  stop: String.raw`function Stop-NovaLfs($v,$t){if($v.State -eq 'Running'){$j=Stop-VM -VM $v -Force -AsJob;if(-not(Wait-Job -Job $j -Timeout $t)){Stop-Job -Job $j};Remove-Job -Job $j -Force;$v=Get-VM -Id $v.Id};if($v.State -eq 'Saved'){Remove-VMSavedState -VM $v}elseif($v.State -ne 'Off'){Stop-VM -VM $v -TurnOff -Force}}`,
} as const;
type Helper = keyof typeof HELPERS;

/**
 * Prepended to every body: reads the arguments (one base64 line on stdin, through `$input`),
 * sets preferences and UTF-8 output, defines the helpers the body uses, decodes the arguments.
 */
function prelude(helpers: readonly Helper[]): string {
  return [
    String.raw`$NovaLfsArgs=[string](@($input) -join '')`,
    String.raw`$ErrorActionPreference='Stop';$ProgressPreference='SilentlyContinue';$WarningPreference='SilentlyContinue'`,
    String.raw`[Console]::OutputEncoding=[Text.UTF8Encoding]::new($false)`,
    ...(['out', ...helpers] as Helper[]).map((h) => HELPERS[h]),
    'try{',
    String.raw`$a=[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($NovaLfsArgs.Trim()))|ConvertFrom-Json`,
    '',
  ].join('\n');
}

const EPILOGUE = String.raw`
}catch{$e=$_;[Console]::Error.WriteLine('NOVALFS-ERROR:'+(ConvertTo-Json -Compress -Depth 4 -InputObject ([ordered]@{FullyQualifiedErrorId=[string]$e.FullyQualifiedErrorId;CategoryInfo=[ordered]@{Category=[string]$e.CategoryInfo.Category;Reason=[string]$e.CategoryInfo.Reason;TargetName=[string]$e.CategoryInfo.TargetName;Activity=[string]$e.CategoryInfo.Activity};Exception=[ordered]@{TypeName=$e.Exception.GetType().FullName;Message=$e.Exception.Message}})));exit 1}
`;

const DISK_IDE = '-ControllerType IDE -ControllerNumber 0 -ControllerLocation 0';

/** Script bodies by name (without prelude and epilogue). */
const BODIES = {
  /** Host facts: Get-VMHost, the OS and the disk holding `diskRoot`. Args: diskRoot. */
  'host-report': String.raw`$h=Get-VMHost;$os=Get-CimInstance Win32_OperatingSystem;$q=Split-Path -Path $a.diskRoot -Qualifier;$d=Get-CimInstance Win32_LogicalDisk|Where-Object DeviceID -eq $q
Out-NovaLfs ([ordered]@{ComputerName=[string]$h.ComputerName;LogicalProcessorCount=[int]$h.LogicalProcessorCount;MemoryCapacity=[int64]$h.MemoryCapacity;Architecture=[string]$env:PROCESSOR_ARCHITECTURE;OsVersion=[string]$os.Version;DiskSize=[int64]$d.Size;DiskFree=[int64]$d.FreeSpace})`,

  /** Every VM whose name starts with `nova-`. No args. */
  list: String.raw`Out-NovaLfs ([ordered]@{VMs=@(Get-VM|Where-Object Name -like 'nova-*'|ForEach-Object{Vm-NovaLfs $_})})`,

  /** One VM, or Found=false. Args: name. */
  get: String.raw`$v=Get-VM -Name $a.name -ErrorAction SilentlyContinue
if($v){Out-NovaLfs ([ordered]@{Found=$true;VM=(Vm-NovaLfs @($v)[0])})}else{Out-NovaLfs ([ordered]@{Found=$false})}`,

  /** Size and SHA-256 of a file on the host, or Exists=false. Args: path, hash (bool). */
  'file-stat': String.raw`if(Test-Path -LiteralPath $a.path -PathType Leaf){$f=Get-Item -LiteralPath $a.path;$s=$null;if($a.hash){$s=(Get-FileHash -LiteralPath $a.path -Algorithm SHA256).Hash.ToLowerInvariant()}
Out-NovaLfs ([ordered]@{Exists=$true;Length=[int64]$f.Length;Sha256=$s})}else{Out-NovaLfs ([ordered]@{Exists=$false})}`,

  /**
   * Moves an uploaded part file into place after checking its SHA-256 (a part whose hash differs is
   * deleted). Args: part, path, sha256.
   */
  'image-commit': String.raw`$s=(Get-FileHash -LiteralPath $a.part -Algorithm SHA256).Hash.ToLowerInvariant()
if($s -ne $a.sha256){Remove-Item -LiteralPath $a.part -Force;Write-Error -Message ('uploaded image hashes to '+$s) -Category InvalidData -ErrorId NovaLfsImageHashMismatch -TargetObject $a.path}
if(Test-Path -LiteralPath $a.path){Remove-Item -LiteralPath $a.part -Force}else{Move-Item -LiteralPath $a.part -Destination $a.path}
Out-NovaLfs ([ordered]@{Committed=$true;Sha256=$s})`,

  /** Removes a file if it exists (an abandoned upload part). Args: path. */
  'file-remove': String.raw`Remove-Item -LiteralPath $a.path -Force -ErrorAction SilentlyContinue
Out-NovaLfs ([ordered]@{Removed=$true})`,

  /**
   * Creates and starts a VM: a differencing disk over the base image, New-VM (generation 1, no
   * VHD), Set-VM notes, Set-VMProcessor, Set-VMMemory (static), Add-VMHardDiskDrive on IDE 0:0,
   * Start-VM; on failure removes what it made. Args: instanceId, name, diskPath, parentPath,
   * memoryBytes, vcpus, notes.
   */
  spawn: String.raw`$m=Lock-NovaLfs $a.instanceId
if(Get-VM -Name $a.name -ErrorAction SilentlyContinue){Write-Error -Message ('a VM named '+$a.name+' exists') -Category ResourceExists -ErrorId NovaLfsVMExists -TargetObject $a.name}
$v=$null
try{New-VHD -Path $a.diskPath -ParentPath $a.parentPath -Differencing|Out-Null
$v=New-VM -Name $a.name -Generation 1 -MemoryStartupBytes $a.memoryBytes -NoVHD
Set-VM -VM $v -Notes $a.notes -AutomaticStartAction Nothing -AutomaticStopAction TurnOff
Set-VMProcessor -VM $v -Count $a.vcpus
Set-VMMemory -VM $v -DynamicMemoryEnabled $false -StartupBytes $a.memoryBytes
Add-VMHardDiskDrive -VM $v ${DISK_IDE} -Path $a.diskPath
Start-VM -VM $v}catch{$f=$_;if($v){Stop-VM -VM $v -TurnOff -Force -ErrorAction SilentlyContinue;Remove-VM -VM $v -Force -ErrorAction SilentlyContinue};Remove-Item -LiteralPath $a.diskPath -Force -ErrorAction SilentlyContinue;throw $f}
$m.ReleaseMutex();Out-NovaLfs ([ordered]@{VM=(Vm-NovaLfs (Get-VM -Id $v.Id))})`,

  /**
   * Turns a VM off, removes it and its differencing disk (only disks under diskRoot). A missing VM
   * is Get-VM's not-found error (the driver treats it as done) after its disk is removed. Args:
   * instanceId, name, diskPath, diskRoot.
   */
  destroy: String.raw`$m=Lock-NovaLfs $a.instanceId
try{$v=Get-VM -Name $a.name}catch{$f=$_;Remove-Item -LiteralPath $a.diskPath -Force -ErrorAction SilentlyContinue;throw $f}
foreach($x in @($v)){$p=@(Get-VMHardDiskDrive -VM $x|ForEach-Object Path)
if($x.State -ne 'Off'){Stop-VM -VM $x -TurnOff -Force}
Remove-VM -VM $x -Force
foreach($d in $p){if($d -and $d.StartsWith($a.diskRoot,[StringComparison]::OrdinalIgnoreCase)){Remove-Item -LiteralPath $d -Force -ErrorAction SilentlyContinue}}}
$m.ReleaseMutex();Out-NovaLfs ([ordered]@{Removed=$true})`,

  /**
   * Power and state operations on one VM. Args: instanceId, name, op (`powerOff`, `powerOn`,
   * `pause`, `unpause`, `suspend`, `resume`, `rebootSoft`, `rebootHard`), timeoutSeconds.
   * powerOff: graceful Stop-VM within timeoutSeconds, then -TurnOff; pause: Suspend-VM; unpause:
   * Resume-VM; suspend: Save-VM; resume and powerOn: Start-VM; rebootHard: Restart-VM -Force;
   * rebootSoft: graceful stop within timeoutSeconds, then Start-VM.
   */
  power: String.raw`$m=Lock-NovaLfs $a.instanceId
$v=@(Get-VM -Name $a.name)[0]
switch($a.op){
'powerOff'{Stop-NovaLfs $v $a.timeoutSeconds}
'powerOn'{if($v.State -eq 'Paused'){Resume-VM -VM $v}elseif($v.State -ne 'Running'){Start-VM -VM $v}}
'pause'{Suspend-VM -VM $v}
'unpause'{Resume-VM -VM $v}
'suspend'{Save-VM -VM $v}
'resume'{Start-VM -VM $v}
'rebootHard'{if($v.State -eq 'Running'){Restart-VM -VM $v -Force}else{Stop-NovaLfs $v 0;Start-VM -VM $v}}
'rebootSoft'{Stop-NovaLfs $v $a.timeoutSeconds;Start-VM -VM $v}
default{Write-Error -Message ('unknown operation '+$a.op) -Category InvalidArgument -ErrorId NovaLfsUnknownOperation}}
$m.ReleaseMutex();Out-NovaLfs ([ordered]@{VM=(Vm-NovaLfs (Get-VM -Id $v.Id))})`,

  /**
   * Rebuild in place: turn off, detach and delete the differencing disk, make a new one over the
   * new base image, attach, update notes, start. The VM (id, name, settings) stays. Args:
   * instanceId, name, diskPath, parentPath, notes.
   */
  rebuild: String.raw`$m=Lock-NovaLfs $a.instanceId
$v=@(Get-VM -Name $a.name)[0]
Stop-NovaLfs $v 0
Get-VMHardDiskDrive -VM $v|Remove-VMHardDiskDrive
Remove-Item -LiteralPath $a.diskPath -Force -ErrorAction SilentlyContinue
New-VHD -Path $a.diskPath -ParentPath $a.parentPath -Differencing|Out-Null
Add-VMHardDiskDrive -VM $v ${DISK_IDE} -Path $a.diskPath
Set-VM -VM $v -Notes $a.notes
Start-VM -VM $v
$m.ReleaseMutex();Out-NovaLfs ([ordered]@{VM=(Vm-NovaLfs (Get-VM -Id $v.Id))})`,
} as const;

/** Name of one of the driver's fixed scripts. */
export type ScriptName = keyof typeof BODIES;

/** The helpers each body uses (besides Out-NovaLfs, which all use). */
const NEEDS: Record<ScriptName, readonly Helper[]> = {
  'host-report': [],
  list: ['vm'],
  get: ['vm'],
  'file-stat': [],
  'image-commit': [],
  'file-remove': [],
  spawn: ['lock', 'vm'],
  destroy: ['lock'],
  power: ['lock', 'vm', 'stop'],
  rebuild: ['lock', 'vm', 'stop'],
};

/** The names of every fixed script. */
export const SCRIPT_NAMES = Object.freeze(Object.keys(BODIES) as ScriptName[]);

/** The full fixed text of a script (prelude, body, epilogue). It never depends on a value. */
export function scriptText(name: ScriptName): string {
  return `${prelude(NEEDS[name])}${BODIES[name]}${EPILOGUE}`;
}

/** SHA-256 (hex) of {@link scriptText}: what the FAKE host's manifest lists. */
export function scriptSha256(name: ScriptName): string {
  return createHash('sha256').update(scriptText(name), 'utf8').digest('hex');
}

/** `{ name: sha256 }` of every fixed script: the FAKE host's `known-scripts.json`. */
export function scriptManifest(): Record<ScriptName, string> {
  return Object.fromEntries(SCRIPT_NAMES.map((n) => [n, scriptSha256(n)])) as Record<ScriptName, string>;
}
