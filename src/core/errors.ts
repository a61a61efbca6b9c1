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
    super('DUPLICATE_REFERENCE', `A task with reference "${reference}" is already deferred (task ${existingTaskId}) and still unique; wait for it to finish or for uniqueUntil to pass.`);
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

export function isPermanentTaskFailure(err: unknown): err is PermanentTaskFailure {
  return err instanceof PermanentTaskFailure;
}

export function isSingularTaskFailure(err: unknown): err is SingularTaskFailure {
  return err instanceof SingularTaskFailure;
}
