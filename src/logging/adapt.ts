/** Turns what the user passed as `logger` into the library's message-first Logger. */
import { consoleLogger, silentLogger, type FieldsFirstLogger, type LogFields, type Logger } from '../core/logger.js';
import { cloudLoggingLogger, onGoogleCloud, type CloudLoggingOptions } from './cloud-logging.js';

export type LoggerOption = Logger | FieldsFirstLogger | false | 'console' | 'cloud-logging';

/** Use a `(fields, message)` logger (pino, bunyan). pino is recognised without it. */
export function fieldsFirst(logger: FieldsFirstLogger): Logger {
  return {
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
  };
}

/** pino's public API: `bindings()` and `child()`; winston and console have no `bindings`. */
function looksLikePino(value: object): boolean {
  const candidate = value as { bindings?: unknown; child?: unknown };
  return typeof candidate.bindings === 'function' && typeof candidate.child === 'function';
}

function isLogger(value: unknown): value is Logger {
  if (!value || (typeof value !== 'object' && typeof value !== 'function')) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate.info === 'function' && typeof candidate.warn === 'function' && typeof candidate.error === 'function';
}

export function resolveLogger(option: LoggerOption | undefined, cloud: CloudLoggingOptions = {}, env: NodeJS.ProcessEnv = process.env): Logger {
  if (option === false) return silentLogger;
  if (option === 'console') return consoleLogger;
  if (option === 'cloud-logging') return cloudLoggingLogger(cloud);
  if (option === undefined) return onGoogleCloud(env) ? cloudLoggingLogger(cloud) : consoleLogger;
  if (!isLogger(option)) {
    throw new TypeError('logger must have info, warn and error methods (console, pino, winston), or be false, "console" or "cloud-logging".');
  }
  if (looksLikePino(option)) return fieldsFirst(option as unknown as FieldsFirstLogger);
  return option;
}

export type { LogFields };
