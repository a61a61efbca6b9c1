/**
 * The few log calls the library makes. Internally always `(message, fields)`; src/logging adapts
 * pino-style `(fields, message)` loggers and writes Cloud Logging's JSON.
 */
export type LogFields = Record<string, unknown>;

/** Message first: console, winston, and this library's own loggers. */
export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** Fields first: pino and bunyan. Wrap one with `fieldsFirst()` (pino itself is recognised). */
export interface FieldsFirstLogger {
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

/** JSON keeps one entry on one line (util.inspect of an object spans many). */
function line(message: string, fields: LogFields | undefined): string {
  if (!fields || Object.keys(fields).length === 0) return `[cloud-defer] ${message}`;
  let text: string;
  try {
    text = JSON.stringify(fields, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  } catch {
    text = '{"fields":"(not serialisable)"}';
  }
  return `[cloud-defer] ${message} ${text}`;
}

export const consoleLogger: Logger = {
  info: (message, fields) => console.info(line(message, fields)),
  warn: (message, fields) => console.warn(line(message, fields)),
  error: (message, fields) => console.error(line(message, fields)),
};

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
