/**
 * Typed errors with stable codes. Callers branch on `err.code`, never on messages.
 */
export type CloudDeferErrorCode =
  | 'UNREGISTERED_TASK'
  | 'DUPLICATE_TASK_NAME'
  | 'TASK_ALREADY_EXISTS'
  | 'DUPLICATE_REFERENCE'
  | 'UNSERIALIZABLE_ARGUMENT'
  | 'INVALID_ENVELOPE'
  | 'INVALID_OPTION'
  | 'PAYLOAD_TOO_LARGE'
  | 'PAYLOAD_MISSING'
  | 'STORE_UNAVAILABLE'
  | 'ENQUEUE_FAILED'
  | 'UNSAFE_CONFIGURATION'
  | 'NOT_FOUND'
  | 'INVALID_STATE'
  | 'TIMEOUT';

export class CloudDeferError extends Error {
  readonly code: CloudDeferErrorCode;
  constructor(code: CloudDeferErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CloudDeferError';
    this.code = code;
  }
}

/** A second defer with a reference that is still reserved, when the caller asked to be told. */
export class DuplicateTaskError extends CloudDeferError {
  readonly existingTaskId: string;
  constructor(reference: string, existingTaskId: string) {
    super(
      'DUPLICATE_REFERENCE',
      `A task with reference "${reference}" is already deferred (task ${existingTaskId}) and still unique; wait for it to finish or for uniqueUntil to pass.`,
    );
    this.name = 'DuplicateTaskError';
    this.existingTaskId = existingTaskId;
  }
}

/** Throw from a task to stop retrying: the task is recorded `failed` and acknowledged (200). */
export class PermanentTaskFailure extends Error {
  readonly code = 'PERMANENT_TASK_FAILURE';
  constructor(message = 'Permanent task failure', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentTaskFailure';
  }
}

/** Throw from a task to ask for one more try later without an error being logged. */
export class SingularTaskFailure extends Error {
  readonly code = 'SINGULAR_TASK_FAILURE';
  constructor(message = 'Retry requested', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SingularTaskFailure';
  }
}

/** instanceof that a hostile value (a Proxy whose getPrototypeOf trap throws) cannot break. */
function safeInstanceOf(value: unknown, type: abstract new (...args: never[]) => unknown): boolean {
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}

export function isPermanentTaskFailure(err: unknown): err is PermanentTaskFailure {
  return safeInstanceOf(err, PermanentTaskFailure);
}

export function isSingularTaskFailure(err: unknown): err is SingularTaskFailure {
  return safeInstanceOf(err, SingularTaskFailure);
}

/** What errorInfo returns; the same shape as records.ts's TaskErrorInfo (kept here to avoid an import cycle). */
export interface ThrownValueInfo {
  message: string;
  name?: string;
  code?: string;
  stack?: string;
}

const MAX_STACK_CHARS = 4000;
const MAX_MESSAGE_CHARS = 2000;

/** Reads one property; a throwing getter or a Proxy trap gives undefined instead of an exception. */
function readSafely(value: object, key: string): unknown {
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** String(x) that cannot throw (symbols, null-prototype objects, Proxies, throwing toString). */
function describeSafely(value: unknown): string {
  try {
    if (typeof value === 'symbol') return value.toString();
    if (typeof value === 'object' && value !== null) {
      try {
        const json = JSON.stringify(value);
        if (json !== undefined && json !== '{}') return json;
      } catch {
        // circular or hostile: fall through to the tag
      }
      return Object.prototype.toString.call(value);
    }
    return String(value);
  } catch {
    return '[unprintable thrown value]';
  }
}

function isErrorLike(value: unknown): value is object {
  try {
    return value instanceof Error || (typeof value === 'object' && value !== null && Object.prototype.toString.call(value) === '[object Error]');
  } catch {
    return false;
  }
}

/**
 * A readable summary of anything a task may throw. Total: it never throws, whatever the value
 * (null, symbols, Proxies, throwing getters, circular errors), so a failed run always settles.
 */
export function errorInfo(err: unknown): ThrownValueInfo {
  try {
    if (isErrorLike(err)) {
      const message = readSafely(err, 'message');
      const name = readSafely(err, 'name');
      const code = readSafely(err, 'code');
      const stack = readSafely(err, 'stack');
      const info: ThrownValueInfo = {
        message: (typeof message === 'string' ? message : describeSafely(message)).slice(0, MAX_MESSAGE_CHARS) || '(no message)',
      };
      if (typeof name === 'string') info.name = name;
      if (typeof code === 'string' || typeof code === 'number') info.code = String(code);
      if (typeof stack === 'string' && stack.length > 0) info.stack = stack.slice(0, MAX_STACK_CHARS);
      const errors = readSafely(err, 'errors');
      if (Array.isArray(errors) && errors.length > 0) {
        info.message += ` (${errors.length} errors: ${errors
          .slice(0, 3)
          .map((e) => errorInfo(e).message)
          .join('; ')})`;
      }
      return info;
    }
    if (typeof err === 'object' && err !== null) {
      const message = readSafely(err, 'message');
      const code = readSafely(err, 'code');
      return {
        message: (typeof message === 'string' ? message : `non-Error value thrown: ${describeSafely(err)}`).slice(0, MAX_MESSAGE_CHARS),
        ...(typeof code === 'string' || typeof code === 'number' ? { code: String(code) } : {}),
      };
    }
    return { message: `non-Error value thrown: ${describeSafely(err)}`.slice(0, MAX_MESSAGE_CHARS) };
  } catch {
    return { message: 'a value was thrown that cannot be read' };
  }
}

/** Runs `work`; what it throws is thrown as `map` makes it (a store's failures become STORE_UNAVAILABLE). */
export async function rethrownAs<T>(work: () => Promise<T>, map: (error: unknown) => unknown): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw map(error);
  }
}
