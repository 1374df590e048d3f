import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  buildCommand,
  decodeCommand,
  encodeArgs,
  POWERSHELL_PREFIX,
  parseErrorRecord,
  parseResult,
} from './command.js';
import { classifyErrorRecord, HyperVErrorCode } from './errors.js';
import { SCRIPT_NAMES, scriptManifest, scriptText } from './scripts.js';

describe('command lines', () => {
  it('are one constant line per script, only base64 after the fixed switches, within cmd.exe limits', () => {
    for (const name of SCRIPT_NAMES) {
      const line = buildCommand(name);
      expect(line).toBe(buildCommand(name));
      expect(line.startsWith(POWERSHELL_PREFIX)).toBe(true);
      expect(line.slice(POWERSHELL_PREFIX.length)).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
      expect(line.length).toBeLessThanOrEqual(8_000);
      expect(decodeCommand(line)).toBe(scriptText(name));
    }
  });

  it('refuses a line over maxCommandLength with a typed error', () => {
    expect(() => buildCommand('spawn', 100)).toThrow(
      expect.objectContaining({ code: HyperVErrorCode.CommandTooLong }),
    );
  });

  it('carries hostile values only as one base64 line of JSON that round-trips exactly', () => {
    const hostile = `x'; Remove-Item -Recurse C:\\ #"$(Stop-Computer)\`n\r\n\0${'\u2028'}@{}|&<>`;
    const input = encodeArgs({ notes: hostile, name: hostile });
    expect(input).toMatch(/^[A-Za-z0-9+/]+={0,2}\n$/);
    expect(JSON.parse(Buffer.from(input, 'base64').toString('utf8'))).toEqual({
      notes: hostile,
      name: hostile,
    });
  });

  it('the FAKE host manifest lists the sha256 of every fixed script (regenerate with fake-host/write-known-scripts.ts)', () => {
    const manifest = JSON.parse(
      readFileSync(new URL('../fake-host/known-scripts.json', import.meta.url), 'utf8'),
    );
    expect(manifest).toEqual(scriptManifest());
  });

  it('scripts read their values only from $a (decoded from stdin): no value is spliced into the text', () => {
    for (const name of SCRIPT_NAMES) {
      const text = scriptText(name);
      expect(text.startsWith("$NovaLfsArgs=[string](@($input) -join '')\n")).toBe(true);
      expect(text).not.toMatch(/Invoke-Expression|\biex\b|\[scriptblock\]::Create|& \$/i);
    }
  });
});

describe('results and errors', () => {
  const schema = z.object({ Found: z.boolean() });
  it('reads the last NOVALFS: line of stdout, ignoring other host output', () => {
    const run = { exitCode: 0, stdout: 'WARNING: noise\r\nNOVALFS:{"Found":true}\r\n', stderr: '' };
    expect(parseResult('get', run, schema)).toEqual({ Found: true });
  });
  it('a result that fails its schema is a command error naming the path', () => {
    const run = { exitCode: 0, stdout: 'NOVALFS:{"Found":"yes"}\n', stderr: '' };
    expect(() => parseResult('get', run, schema)).toThrow(
      expect.objectContaining({
        code: HyperVErrorCode.Command,
        details: expect.objectContaining({ kind: 'other' }),
      }),
    );
  });
  it('a missing result line and garbage are command errors, not crashes', () => {
    expect(() => parseResult('get', { exitCode: 0, stdout: 'NOVALFS:{', stderr: '' }, schema)).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ problem: 'result line is not JSON' }) }),
    );
    expect(() => parseResult('get', { exitCode: 0, stdout: '', stderr: '' }, schema)).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ problem: 'no result line on stdout' }) }),
    );
  });
  it('reads ErrorRecords and classifies them by FullyQualifiedErrorId, category and exception type', () => {
    const rec = (
      fqid: string,
      category: string,
      type = 'Microsoft.HyperV.PowerShell.VirtualizationException',
    ) =>
      `NOVALFS-ERROR:${JSON.stringify({
        FullyQualifiedErrorId: fqid,
        CategoryInfo: {
          Category: category,
          Reason: 'VirtualizationException',
          TargetName: 'nova-x',
          Activity: 'Get-VM',
        },
        Exception: { TypeName: type, Message: 'm' },
      })}\r\n`;
    const kind = (s: string) => classifyErrorRecord(parseErrorRecord(s)!);
    expect(kind(rec('InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM', 'InvalidArgument'))).toBe(
      'notFound',
    );
    expect(kind(rec('InvalidParameter,Microsoft.HyperV.PowerShell.Commands.NewVM', 'InvalidArgument'))).toBe(
      'other',
    );
    expect(kind(rec('InvalidState,Microsoft.HyperV.PowerShell.Commands.SuspendVM', 'InvalidOperation'))).toBe(
      'invalidState',
    );
    expect(kind(rec('OutOfMemory,Microsoft.HyperV.PowerShell.Commands.StartVM', 'ResourceUnavailable'))).toBe(
      'insufficientResources',
    );
    expect(kind(rec('AccessDenied,Microsoft.HyperV.PowerShell.Commands.GetVM', 'PermissionDenied'))).toBe(
      'accessDenied',
    );
    expect(kind(rec('x', 'OperationStopped', 'System.TimeoutException'))).toBe('timeout');
    expect(kind(rec('NovaLfsVMExists', 'ResourceExists'))).toBe('exists');
    expect(parseErrorRecord('Get-VM : something\r\n+ CategoryInfo : ...')).toBeUndefined();
  });
});
