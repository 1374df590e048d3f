/**
 * Where the bus reports what it refused or could not do (forged or malformed messages, failed
 * heartbeats). Fields are structured: `code`, `subject`, `issues`, `hostId`...
 */
export interface BusLogger {
  warn(message: string, fields: Record<string, unknown>): void;
}

/** The default logger: one JSON line per record on stderr. */
export const consoleBusLogger: BusLogger = {
  warn(message, fields) {
    console.warn(JSON.stringify({ level: 'warn', component: 'bus-nats', message, ...fields }));
  },
};
