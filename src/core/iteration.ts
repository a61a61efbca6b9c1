/**
 * What deferIteration needs from a store and from a data source. Kept apart from StateStore so a
 * store can add iteration support on its own schedule.
 */
import type { TaskErrorInfo } from './records.js';

export type IterationStatus = 'splitting' | 'running' | 'finalizing' | 'succeeded' | 'failed' | 'cancelled';

export interface ShardProgress {
  index: number;
  /** Items whose callback returned. */
  processed: number;
  /** Callback errors seen (each one re-defers or retries the shard). */
  errors: number;
  done: boolean;
  lastError?: TaskErrorInfo;
  startedAt?: number;
  finishedAt?: number;
}

export interface IterationRecord {
  id: string;
  callbackTask: string;
  finalizeTask: string;
  queue: string;
  shardCount: number;
  status: IterationStatus;
  createdAt: number;
  updatedAt: number;
  finishedAt?: number;
  shards: ShardProgress[];
  /** Remove the record once finalize has been deferred (djangae's _delete_marker). */
  deleteMarker: boolean;
  expiresAt: number;
}

export interface ShardProgressUpdate {
  processedDelta: number;
  errorsDelta: number;
  lastError?: TaskErrorInfo;
  now: number;
}

export interface IterationStore {
  createIteration(record: IterationRecord): Promise<void>;
  getIteration(id: string): Promise<IterationRecord | undefined>;
  /** Newest first. */
  listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationRecord[]; nextCursor?: string }>;
  /** Sets the shard count and status once the source has been split. */
  startIteration(id: string, shardCount: number, now: number): Promise<void>;
  /** ATOMIC per shard: adds to the shard's counters. */
  recordShardProgress(id: string, shardIndex: number, update: ShardProgressUpdate): Promise<void>;
  /**
   * Idempotent: marks one shard done (a per-shard marker, never a bare counter) and reports
   * allDone to exactly one shard's completion, the one that saw every shard done first (and again
   * to a repeat of that shard's call, a redelivery). A repeated call never counts a shard twice.
   * `shardsDone`: the shards this call saw done (the shard count with allDone).
   */
  completeShard(id: string, shardIndex: number, now: number): Promise<{ allDone: boolean; shardsDone: number }>;
  /** 'cancelled' (the console's cancel): its shards stop at their next item and finalize never runs. */
  finishIteration(id: string, status: Extract<IterationStatus, 'finalizing' | 'succeeded' | 'failed' | 'cancelled'>, now: number): Promise<void>;
  deleteIteration(id: string): Promise<void>;
}

/** One item of a source with the key that orders it within its shard. */
export interface SourceItem<Item = unknown> {
  key: string;
  value: Item;
}

export interface SourcePage<Item = unknown> {
  /** Ascending by key, all after the `after` key asked for. */
  items: Array<SourceItem<Item>>;
  /** No items beyond this page in the range. */
  done: boolean;
}

/**
 * A data source deferIteration can walk: split into ranges once, then read each range in pages
 * from a cursor (the last key processed), never an offset. Ranges travel inside shard tasks, so
 * they must be codec-encodable; `kind` finds the source again in whichever process runs the shard.
 */
export interface IterationSource<Spec = unknown, Range = unknown, Item = unknown> {
  readonly kind: string;
  split(spec: Spec, shards: number): Promise<Range[]>;
  read(range: Range, after: string | undefined, limit: number): Promise<SourcePage<Item>>;
  /** Optional: how many items a range holds, for progress by items. */
  size?(range: Range): number;
}

/** What deferIteration is given: a source kind and its spec (a query, a key, a list). */
export interface SourceSpec<Spec = unknown> {
  readonly kind: string;
  readonly spec: Spec;
}
