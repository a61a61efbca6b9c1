/** The task record: what the StateStore keeps about one deferred call. Times are epoch ms. */
export type TaskStatus = 'queued' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'cancelled';

/** Every status, in lifecycle order: the one list the package uses. */
export const TASK_STATUSES: readonly TaskStatus[] = ['queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled'];

export function isTaskStatus(value: unknown): value is TaskStatus {
  return typeof value === 'string' && (TASK_STATUSES as readonly string[]).includes(value);
}

export const FINISHED_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];
export const PENDING_STATUSES: readonly TaskStatus[] = ['queued', 'retrying'];

export function isFinished(status: TaskStatus): boolean {
  return FINISHED_STATUSES.includes(status);
}

/** Allowed lifecycle moves; stores refuse anything else. Rerun moves a finished task back to queued. */
export const TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  queued: ['running', 'cancelled', 'failed', 'succeeded'],
  running: ['succeeded', 'failed', 'retrying', 'running'],
  retrying: ['running', 'cancelled', 'failed', 'succeeded'],
  succeeded: ['queued'],
  failed: ['queued'],
  cancelled: ['queued'],
};

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export interface TaskErrorInfo {
  message: string;
  name?: string;
  code?: string;
  /** Trimmed to a few KiB. */
  stack?: string;
}

export interface AttemptRecord {
  /** When the attempt started. */
  at: number;
  /** The HTTP status the handler answered. */
  statusCode: number;
  outcome: 'succeeded' | 'failed' | 'retrying';
  durationMs: number;
  error?: TaskErrorInfo;
  /** X-CloudTasks-TaskRetryCount of the delivery. */
  retryCount?: number;
}

export interface TaskRecord {
  id: string;
  /** The registered task's name (what to run). */
  taskName: string;
  queue: string;
  /** Full Cloud Tasks resource name once enqueued. */
  cloudTaskName?: string;
  status: TaskStatus;
  reference?: string;
  uniqueUntil?: number;
  createdAt: number;
  updatedAt: number;
  eta: number;
  startedAt?: number;
  finishedAt?: number;
  /** Runs started by the handler (guard acquisitions). */
  attempts: number;
  /**
   * Runs that ended without an outcome because their instance did: killed, crashed, stalled past
   * its lease or shut down. Up to maxAttempts - 1 of them do not use up an attempt (countedAttempts).
   */
  interruptedRuns?: number;
  /** X-CloudTasks-TaskExecutionCount seen on the latest delivery. */
  executionCount: number;
  maxAttempts?: number;
  lastError?: TaskErrorInfo;
  durationMs?: number;
  payloadSize: number;
  /**
   * The encoded arguments (codec JSON) when they travel inline; kept so the console can show
   * them and rerun the task. Large payloads are not copied here.
   */
  argsJson?: string;
  /** Set when the encoded arguments live in the PayloadStore. */
  payloadRef?: string;
  iterationId?: string;
  shardIndex?: number;
  history: AttemptRecord[];
  /** The execution guard: who runs it and until when that claim holds. */
  leaseOwner?: string;
  leaseUntil?: number;
  /** Bumped by every write; lets stores refuse stale writers. */
  version: number;
  /** When the record may be forgotten (retention). */
  expiresAt: number;
}

export const MAX_HISTORY = 20;

/** How each record field is typed, for stores that keep a record as separate fields. */
export type RecordFieldType = 'string' | 'number' | 'error' | 'history';

/**
 * Every TaskRecord field with its type. Exhaustive over keyof TaskRecord: a field added to the
 * record fails to compile here, so no store can silently drop it.
 */
export const TASK_RECORD_FIELDS: { readonly [K in keyof TaskRecord]-?: RecordFieldType } = {
  id: 'string',
  taskName: 'string',
  queue: 'string',
  cloudTaskName: 'string',
  status: 'string',
  reference: 'string',
  uniqueUntil: 'number',
  createdAt: 'number',
  updatedAt: 'number',
  eta: 'number',
  startedAt: 'number',
  finishedAt: 'number',
  attempts: 'number',
  interruptedRuns: 'number',
  executionCount: 'number',
  maxAttempts: 'number',
  lastError: 'error',
  durationMs: 'number',
  payloadSize: 'number',
  argsJson: 'string',
  payloadRef: 'string',
  iterationId: 'string',
  shardIndex: 'number',
  history: 'history',
  leaseOwner: 'string',
  leaseUntil: 'number',
  version: 'number',
  expiresAt: 'number',
};

/** What a new record is made of; the rest is the same for every record a defer (or a rebuild) writes. */
export type NewRecordFields = Pick<TaskRecord, 'id' | 'taskName' | 'queue' | 'eta' | 'payloadSize' | 'expiresAt'> & Partial<TaskRecord>;

/** A task record as it is first written: queued, never attempted, version 1. */
export function queuedRecord(fields: NewRecordFields, now: number): TaskRecord {
  const { id, taskName, queue, eta, payloadSize, expiresAt, ...rest } = fields;
  return {
    id,
    taskName,
    queue,
    status: 'queued',
    createdAt: now,
    updatedAt: now,
    eta,
    attempts: 0,
    executionCount: 0,
    payloadSize,
    history: [],
    version: 1,
    expiresAt,
    ...rest,
  };
}
