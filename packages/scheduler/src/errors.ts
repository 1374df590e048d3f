import { ErrorCode, NovaError } from '@nova-lfs/core';

/** Stable error codes of the scheduler package. */
export const SchedulerErrorCode = {
  DuplicatePlugin: ErrorCode.SchedulerDuplicatePlugin,
  UnknownPlugin: ErrorCode.SchedulerUnknownPlugin,
  InvalidProfile: ErrorCode.SchedulerInvalidProfile,
} as const;

/** A plugin name was registered twice. */
export class DuplicatePluginError extends NovaError<{ plugin: string }> {
  constructor(plugin: string) {
    super(SchedulerErrorCode.DuplicatePlugin, `scheduler plugin ${plugin} is already registered`, { plugin });
  }
}

/** A profile names a plugin that is not registered (or not of the right kind). */
export class UnknownPluginError extends NovaError<{ plugin: string; kind: string; profile: string }> {
  constructor(plugin: string, kind: string, profile: string) {
    super(SchedulerErrorCode.UnknownPlugin, `profile ${profile}: no ${kind} plugin named ${plugin}`, {
      plugin,
      kind,
      profile,
    });
  }
}

/** A profile is malformed (e.g. a non-finite weight). */
export class InvalidProfileError extends NovaError<{ profile: string; field: string }> {
  constructor(profile: string, field: string, message: string) {
    super(SchedulerErrorCode.InvalidProfile, `profile ${profile}: ${field}: ${message}`, { profile, field });
  }
}
