/**
 * cloud-defer/adapter: everything a storage backend needs. A new backend implements the
 * primitives (DocumentStore: read with a version, commit version-guarded writes as a whole,
 * list), builds its StateStore and IterationStore with DocumentStateStore and
 * DocumentIterationStore, adds a PayloadStore, a TransactionHook and a `transaction(work)`
 * runner (see Stores), optionally TaskCounters, and proves it all with describeStoreContract
 * from one mocha test file (docs/architecture.md, "Writing an adapter"):
 *
 *   import { describeStoreContract } from 'cloud-defer/adapter';
 *   describeStoreContract('postgres', async () => ({ stores, raw, contenders, cleanup }));
 */
export { describeStoreContract } from './contract.js';
export type { ContractHarness, ContractOptions, RawBackend } from './contract.js';
export { DEFAULT_RETRY, DocumentIterationStore, DocumentStateStore, retryPause, shardId } from '../src/core/documents.js';
export type {
  DocumentKey,
  DocumentKind,
  DocumentStore,
  DocumentStoreOptions,
  DocumentValues,
  DocumentWrite,
  IterationHeader,
  RetryPolicy,
  Versioned,
} from '../src/core/documents.js';
export * as lifecycle from '../src/core/lifecycle.js';
export type { IterationCompletion, ReferenceHold, ShardCompletionDecision, TransitionPatch } from '../src/core/lifecycle.js';
export { decodeCursor, encodeCursor, newestFirst, type CursorPosition } from '../src/core/cursor.js';
export { CloudDeferError, type CloudDeferErrorCode } from '../src/core/errors.js';
export {
  durationBucket,
  emptyBucket,
  HOUR_RETENTION_MS,
  MINUTE_RETENTION_MS,
  resolutionMs,
  sumCounterRows,
} from '../src/core/counters.js';
export type { AttemptSample, CounterBucket, CounterResolution, CountedOutcome, TaskCounters } from '../src/core/counters.js';
export {
  canTransition,
  FINISHED_STATUSES,
  isFinished,
  MAX_HISTORY,
  PENDING_STATUSES,
  TASK_RECORD_FIELDS,
  TASK_STATUSES,
  TRANSITIONS,
} from '../src/core/records.js';
export type { AttemptRecord, RecordFieldType, TaskErrorInfo, TaskRecord, TaskStatus } from '../src/core/records.js';
export type {
  AcquireLeaseInput,
  CreateTaskResult,
  LeaseOutcome,
  OutboxEntry,
  PayloadStore,
  SettleInput,
  StagedDefer,
  StateStore,
  Stores,
  TaskPage,
  TaskQuery,
  TransactionHook,
} from '../src/core/stores.js';
export type {
  IterationRecord,
  IterationSource,
  IterationStatus,
  IterationStore,
  ShardProgress,
  ShardProgressUpdate,
  SourceItem,
  SourcePage,
  SourceSpec,
} from '../src/core/iteration.js';
export type { EnqueueRequest } from '../src/core/transport.js';
