/**
 * The three store interfaces the core relies on. Adapters implement them; the contract suite in
 * test/contract/ proves each atomicity promise with concurrent callers.
 */
import type { AttemptRecord, TaskErrorInfo, TaskRecord, TaskStatus } from './records.js';
import type { EnqueueRequest } from './transport.js';
import type { IterationStore } from './iteration.js';

/** Bytes under an id with a time-to-live. Backends with item limits chunk inside the adapter. */
export interface PayloadStore {
  put(id: string, data: Uint8Array, ttlMs: number): Promise<void>;
  get(id: string): Promise<Uint8Array | undefined>;
  delete(id: string): Promise<void>;
}

export type CreateTaskResult =
  | { created: true }
  /** The reference is held by an unfinished task whose uniqueUntil has not passed. */
  | { created: false; existing: TaskRecord };

export type LeaseOutcome =
  /** The caller now runs the task; `record` is the record after the move to `running`. */
  | { kind: 'acquired'; record: TaskRecord }
  /** Succeeded, failed or cancelled already: acknowledge without running. */
  | { kind: 'finished'; record: TaskRecord }
  /** Running under a live lease elsewhere: ask the queue to retry later. */
  | { kind: 'busy'; record: TaskRecord }
  | { kind: 'missing' };

export interface AcquireLeaseInput {
  owner: string;
  now: number;
  leaseMs: number;
  /** X-CloudTasks-TaskExecutionCount of this delivery. */
  executionCount: number;
}

export interface SettleInput {
  owner: string;
  status: Extract<TaskStatus, 'succeeded' | 'failed' | 'retrying'>;
  now: number;
  attempt: AttemptRecord;
  error?: TaskErrorInfo;
  /** New retention deadline for the record. */
  expiresAt: number;
  /**
   * The record as this run last wrote it (its lease or latest renewal). A store may decide on it
   * without reading first, so the outcome is written one round trip after the task returns; the
   * store must still refuse the write when the stored record has changed since.
   */
  last?: TaskRecord;
}

export interface TaskQuery {
  status?: TaskStatus;
  queue?: string;
  taskName?: string;
  reference?: string;
  iterationId?: string;
  /** Opaque, from a previous page's `nextCursor`. */
  cursor?: string;
  /** Default 50, at most 1000. */
  limit?: number;
}

export interface TaskPage {
  /** Newest first (createdAt, then id, descending). Stable under concurrent inserts. */
  records: TaskRecord[];
  nextCursor?: string;
}

/** An enqueue staged inside a user's transaction, kept until it is known to have happened. */
export interface OutboxEntry {
  taskId: string;
  createdAt: number;
  request: EnqueueRequest;
}

export interface StateStore {
  /**
   * Optional: the store picks task ids, e.g. so that a task and its reference share a Redis
   * Cluster hash slot. The core generates a random id when absent.
   */
  newTaskId?(reference: string | undefined): string;
  /**
   * Write a new record. ATOMIC with the reference check: when `record.reference` is set and an
   * unfinished task holds it with `uniqueUntil` unset or after `now`, nothing is written and that
   * task is returned. Otherwise the reference now points at this record.
   */
  createTask(record: TaskRecord, now: number): Promise<CreateTaskResult>;
  getTask(id: string): Promise<TaskRecord | undefined>;
  /** The newest task created with this reference, if its record is still kept. */
  findByReference(reference: string): Promise<TaskRecord | undefined>;
  /**
   * The execution guard, ATOMIC: queued | retrying | running-with-expired-lease -> running with a
   * lease for `owner`, attempts + 1. Idempotent for the owner: asking again while `owner` holds
   * the lease answers `acquired` and changes nothing (a retry after a lost reply).
   */
  acquireLease(id: string, input: AcquireLeaseInput): Promise<LeaseOutcome>;
  /**
   * Record the outcome of a run, ATOMIC compare-and-set: only while the record is `running` with
   * `owner`'s lease; otherwise (a stale writer whose lease was taken over) returns undefined and
   * writes nothing. Appends the attempt to a bounded history. A finished status frees the reference.
   */
  settle(id: string, input: SettleInput): Promise<TaskRecord | undefined>;
  /**
   * Move a record from one of `from` to `to` with a patch, ATOMIC compare-and-set; only moves the
   * lifecycle allows. Returns the new record, or undefined when the record was not in `from`.
   * A finished `to` frees the reference.
   */
  transition(
    id: string,
    from: readonly TaskStatus[],
    to: TaskStatus,
    patch: Partial<Pick<TaskRecord, 'lastError' | 'finishedAt' | 'eta' | 'cloudTaskName' | 'expiresAt' | 'uniqueUntil'>>,
    now: number,
  ): Promise<TaskRecord | undefined>;
  /**
   * Optional (the heartbeat): extend `owner`'s live lease to `now + leaseMs`, ATOMIC. Undefined
   * when the owner no longer holds a live lease (taken over, settled, or expired). Without it a
   * run's lease covers its whole dispatch deadline.
   */
  renewLease?(id: string, input: { owner: string; now: number; leaseMs: number }): Promise<TaskRecord | undefined>;
  /** Optional: give `owner`'s lease back without an outcome; the record waits as `retrying`. */
  releaseLease?(id: string, input: { owner: string; now: number }): Promise<TaskRecord | undefined>;
  listTasks(query: TaskQuery): Promise<TaskPage>;
  /** Remove a record and free its reference if it holds it (undo of a failed defer). */
  deleteTask(id: string): Promise<void>;

  /** Outbox of enqueues that must happen after a commit (see TransactionHook). */
  addOutbox(entry: OutboxEntry): Promise<void>;
  listOutbox(createdBefore: number, limit: number): Promise<OutboxEntry[]>;
  removeOutbox(taskId: string): Promise<void>;
}

/** What a defer inside a user's transaction hands to the backend's hook. */
export interface StagedDefer {
  record: TaskRecord;
  outbox: OutboxEntry;
  /** Present when the payload is too large to travel inline. */
  payload?: { id: string; data: Uint8Array; ttlMs: number };
}

/**
 * Joins a defer to a backend transaction: writes the record, the outbox entry and the payload in
 * the transaction, and runs `afterCommit` (the enqueue) once it has committed; never on rollback.
 */
export interface TransactionHook<Tx = unknown> {
  readonly name: string;
  accepts(transaction: unknown): transaction is Tx;
  stage(transaction: Tx, staged: StagedDefer, afterCommit: () => Promise<void>): Promise<void>;
}

/** What an adapter entry point (cloud-defer/memory, cloud-defer/redis, ...) returns. */
export interface Stores {
  readonly kind: string;
  readonly payloads: PayloadStore;
  readonly state: StateStore;
  readonly transactions: readonly TransactionHook[];
  /**
   * Remove up to `limit` records and payloads whose retention has passed, for backends without
   * native expiry (Datastore). Returns how many were removed.
   */
  sweepExpired?(limit: number): Promise<number>;
  /**
   * Run `work` in one of this backend's transactions, through the client's public API: commit when
   * `work` resolves and then run the enqueues that defers given `{ transaction: tx }` staged
   * (their afterCommit, once each); roll back and run none of them when it throws. Every adapter
   * shipped with cloud-defer has one; the contract suite runs the transaction path through it.
   */
  transaction?<T>(work: (tx: unknown) => Promise<T>): Promise<T>;
  /** deferIteration's bookkeeping; stores without it cannot run iterations. */
  readonly iterations?: IterationStore;
  close?(): Promise<void>;
}
