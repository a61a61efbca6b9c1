/** The JSON shapes the console API answers with (what the page renders). Times are epoch ms. */
import type { Codec } from '../core/codec.js';
import type { IterationRecord, ShardProgress } from '../core/iteration.js';
import { FINISHED_STATUSES, PENDING_STATUSES, type AttemptRecord, type TaskErrorInfo, type TaskRecord, type TaskStatus } from '../core/records.js';
import { argsView, type ArgsView } from './display.js';

export interface TaskSummary {
  id: string;
  taskName: string;
  queue: string;
  status: TaskStatus;
  reference?: string;
  createdAt: number;
  eta: number;
  startedAt?: number;
  finishedAt?: number;
  attempts: number;
  durationMs?: number;
  /** The last error's message, for the table. */
  error?: string;
  iterationId?: string;
  shardIndex?: number;
}

export interface TaskDetail extends TaskSummary {
  cloudTaskName?: string;
  uniqueUntil?: number;
  updatedAt: number;
  executionCount: number;
  /** Runs that ended without an outcome because their instance did (killed, crashed, shut down). */
  interruptedRuns?: number;
  maxAttempts?: number;
  payloadSize: number;
  /** The arguments live in the payload store rather than in the record. */
  payloadStored: boolean;
  lastError?: TaskErrorInfo;
  /** Newest attempts last, as recorded (bounded). */
  history: AttemptRecord[];
  leaseUntil?: number;
  /** When the record will be forgotten. */
  expiresAt: number;
  args: ArgsView;
  canRerun: boolean;
  canCancel: boolean;
}

export interface IterationSummary {
  id: string;
  callbackTask: string;
  finalizeTask: string;
  queue: string;
  status: IterationRecord['status'];
  createdAt: number;
  updatedAt: number;
  finishedAt?: number;
  shardCount: number;
  shardsDone: number;
  /** Items processed over all shards. */
  processed: number;
  errors: number;
  /** Shards done out of all shards (100 once the iteration succeeded). */
  percent: number;
}

export interface IterationDetail extends IterationSummary {
  shards: ShardProgress[];
}

const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } => (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

export function taskSummary(record: TaskRecord): TaskSummary {
  return {
    id: record.id,
    taskName: record.taskName,
    queue: record.queue,
    status: record.status,
    ...optional('reference', record.reference),
    createdAt: record.createdAt,
    eta: record.eta,
    ...optional('startedAt', record.startedAt),
    ...optional('finishedAt', record.finishedAt),
    attempts: record.attempts,
    ...optional('durationMs', record.durationMs),
    ...optional('error', record.lastError?.message),
    ...optional('iterationId', record.iterationId),
    ...optional('shardIndex', record.shardIndex),
  };
}

export function taskDetail(record: TaskRecord, codec: Codec): TaskDetail {
  return {
    ...taskSummary(record),
    ...optional('cloudTaskName', record.cloudTaskName),
    ...optional('uniqueUntil', record.uniqueUntil),
    updatedAt: record.updatedAt,
    executionCount: record.executionCount,
    ...optional('interruptedRuns', record.interruptedRuns),
    ...optional('maxAttempts', record.maxAttempts),
    payloadSize: record.payloadSize,
    payloadStored: record.payloadRef !== undefined,
    ...optional('lastError', record.lastError),
    history: record.history,
    ...optional('leaseUntil', record.status === 'running' ? record.leaseUntil : undefined),
    expiresAt: record.expiresAt,
    args: argsView(record, codec),
    canRerun: FINISHED_STATUSES.includes(record.status),
    canCancel: PENDING_STATUSES.includes(record.status),
  };
}

export function iterationSummary(record: IterationRecord): IterationSummary {
  const shardsDone = record.shards.filter((s) => s.done).length;
  const percent = record.status === 'succeeded' ? 100 : record.shardCount > 0 ? Math.floor((shardsDone * 100) / record.shardCount) : 0;
  return {
    id: record.id,
    callbackTask: record.callbackTask,
    finalizeTask: record.finalizeTask,
    queue: record.queue,
    status: record.status,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    ...optional('finishedAt', record.finishedAt),
    shardCount: record.shardCount,
    shardsDone,
    processed: record.shards.reduce((n, s) => n + s.processed, 0),
    errors: record.shards.reduce((n, s) => n + s.errors, 0),
    percent,
  };
}

export function iterationDetail(record: IterationRecord): IterationDetail {
  return { ...iterationSummary(record), shards: record.shards };
}
