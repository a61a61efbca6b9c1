/**
 * The task lifecycle, decided once: pure functions (no I/O, no clock) that take the current
 * record(s) and an input and return the next record(s) or a refusal. A store only has to keep
 * what these return, guarded by the `version` the decision was made on (see documents.ts);
 * the model-based test in test/core/ checks them against a reference model with no backend.
 */
import type { ShardProgress } from './iteration.js';
import { canTransition, isFinished, MAX_HISTORY, PENDING_STATUSES, type TaskRecord, type TaskStatus } from './records.js';
import type { AcquireLeaseInput, SettleInput } from './stores.js';

/** Who holds a reference: the newest task created with it, and whether it still blocks others. */
export interface ReferenceHold {
  reference: string;
  taskId: string;
  /** False once the holder finished: the reference is free, but findByReference still finds it. */
  held: boolean;
  uniqueUntil?: number;
}

/** The patch a transition may carry. */
export type TransitionPatch = Partial<Pick<TaskRecord, 'lastError' | 'finishedAt' | 'eta' | 'cloudTaskName' | 'expiresAt' | 'uniqueUntil'>>;

/**
 * A record written again: every write bumps `version`, the guard the next writer must expect.
 * One copy, field by field (delivery is hot: spreads and rest patterns cost a copy each), without
 * the lease fields when `dropLease`.
 */
function bump(record: TaskRecord, now: number, dropLease = false): TaskRecord {
  const next: Record<string, unknown> = {};
  for (const key in record) {
    if (dropLease && (key === 'leaseOwner' || key === 'leaseUntil')) continue;
    next[key] = record[key as keyof TaskRecord];
  }
  next.updatedAt = now;
  next.version = record.version + 1;
  return next as unknown as TaskRecord;
}

/** Does `hold` keep the reference from a new task at `now`? Its holder must be known to be unfinished. */
export function holdBlocks(hold: ReferenceHold | undefined, holder: TaskRecord | undefined, now: number): holder is TaskRecord {
  if (!hold || !hold.held || !holder || holder.id !== hold.taskId) return false;
  if (isFinished(holder.status)) return false;
  return holder.uniqueUntil === undefined || holder.uniqueUntil > now;
}

export type CreateDecision =
  | { kind: 'create'; record: TaskRecord; hold?: ReferenceHold }
  /** A record with this id exists already. */
  | { kind: 'exists' }
  /** The reference is held by an unfinished task whose uniqueUntil has not passed. */
  | { kind: 'held'; existing: TaskRecord };

/**
 * Create a record, with its reference when it has one. `existing` is the live record under the
 * same id, `hold` the reference's hold and `holder` the record it names (all as read together).
 */
export function createWithReference(
  record: TaskRecord,
  now: number,
  current: { existing?: TaskRecord; hold?: ReferenceHold; holder?: TaskRecord },
): CreateDecision {
  if (current.existing) return { kind: 'exists' };
  if (record.reference === undefined) return { kind: 'create', record };
  if (holdBlocks(current.hold, current.holder, now)) return { kind: 'held', existing: current.holder };
  const hold: ReferenceHold = {
    reference: record.reference,
    taskId: record.id,
    held: !isFinished(record.status),
    ...(record.uniqueUntil !== undefined ? { uniqueUntil: record.uniqueUntil } : {}),
  };
  return { kind: 'create', record, hold };
}

export type LeaseDecision =
  /** `changed` is false when the caller already held the lease (a retry after a lost reply). */
  | { kind: 'acquired'; record: TaskRecord; changed: boolean }
  | { kind: 'finished'; record: TaskRecord }
  | { kind: 'busy'; record: TaskRecord }
  | { kind: 'missing' };

/** The execution guard: queued | retrying | running-with-expired-lease -> running for `owner`. */
export function acquireLease(record: TaskRecord | undefined, input: AcquireLeaseInput): LeaseDecision {
  if (!record) return { kind: 'missing' };
  if (isFinished(record.status)) return { kind: 'finished', record };
  if (record.status === 'running' && record.leaseOwner === input.owner) return { kind: 'acquired', record, changed: false };
  if (record.status === 'running' && (record.leaseUntil ?? 0) > input.now) return { kind: 'busy', record };
  const next = bump(record, input.now);
  // Taking over a lease that ran out: the run that held it ended without an outcome.
  if (record.status === 'running') countCutShort(record, next);
  next.status = 'running';
  next.leaseOwner = input.owner;
  next.leaseUntil = input.now + input.leaseMs;
  next.attempts = record.attempts + 1;
  next.executionCount = input.executionCount;
  next.startedAt = record.startedAt ?? input.now;
  return { kind: 'acquired', record: next, changed: true };
}

/** `next` is `record` after its run ended without its own settle: one more run cut short. */
function countCutShort(record: TaskRecord, next: TaskRecord): void {
  next.interruptedRuns = (record.interruptedRuns ?? 0) + 1;
}

/**
 * The attempts that count against `maxAttempts`: a run its instance cut short (killed, crashed,
 * shut down) is not the task's failure, so up to `maxAttempts - 1` such runs are not counted.
 * Bounded that way, `maxAttempts: 1` still means at most one run, and a task that kills its
 * instance on every run is given up after at most `2 * maxAttempts - 1` runs. With no limit
 * (undefined, or -1) every run counts.
 */
export function countedAttempts(attempts: number, interruptedRuns: number, maxAttempts: number | undefined): number {
  return attempts - Math.min(interruptedRuns, Math.max(0, (maxAttempts ?? 0) - 1));
}

/** Extend `owner`'s live lease (a heartbeat); undefined when the owner no longer holds it. */
export function renewLease(record: TaskRecord | undefined, input: { owner: string; now: number; leaseMs: number }): TaskRecord | undefined {
  if (!record || record.status !== 'running' || record.leaseOwner !== input.owner) return undefined;
  if ((record.leaseUntil ?? 0) <= input.now) return undefined;
  const next = bump(record, input.now);
  next.leaseUntil = Math.max(record.leaseUntil ?? 0, input.now + input.leaseMs);
  return next;
}

/**
 * Give a run's lease back without an outcome (shutdown): the record waits as `retrying` so the
 * next delivery runs it at once instead of waiting for the lease to expire.
 */
export function releaseLease(record: TaskRecord | undefined, input: { owner: string; now: number }): TaskRecord | undefined {
  if (!record || record.status !== 'running' || record.leaseOwner !== input.owner) return undefined;
  const next = bump(record, input.now, true);
  next.status = 'retrying';
  countCutShort(record, next);
  return next;
}

/** Record a run's outcome; only while `owner` holds the lease (a stale writer gets undefined). */
export function settle(record: TaskRecord | undefined, input: SettleInput): TaskRecord | undefined {
  if (!record || record.status !== 'running' || record.leaseOwner !== input.owner) return undefined;
  const history = record.history.length < MAX_HISTORY ? [...record.history, input.attempt] : [...record.history.slice(1 - MAX_HISTORY), input.attempt];
  const next = bump(record, input.now, true);
  next.status = input.status;
  next.durationMs = input.attempt.durationMs;
  next.expiresAt = input.expiresAt;
  next.history = history;
  if (input.error) next.lastError = input.error;
  if (isFinished(input.status)) next.finishedAt = input.now;
  return next;
}

/** Move from one of `from` to `to` with a patch, only along the lifecycle's allowed moves. */
export function transition(
  record: TaskRecord | undefined,
  from: readonly TaskStatus[],
  to: TaskStatus,
  patch: TransitionPatch,
  now: number,
): TaskRecord | undefined {
  if (!record || !from.includes(record.status) || !canTransition(record.status, to)) return undefined;
  const next = bump(record, now, to !== 'running');
  // Moved out of `running` by anyone but its own settle (the reconciler, after the lease ran out).
  if (record.status === 'running' && to !== 'running') countCutShort(record, next);
  next.status = to;
  for (const [name, value] of Object.entries(patch) as Array<[keyof TransitionPatch, unknown]>) {
    if (value === undefined) delete next[name];
    else (next as unknown as Record<string, unknown>)[name] = value;
  }
  if (isFinished(to) && next.finishedAt === undefined) next.finishedAt = now;
  return next;
}

/** Cancel a task that has not run yet. */
export function cancel(record: TaskRecord | undefined, now: number, patch: TransitionPatch = {}): TaskRecord | undefined {
  return transition(record, PENDING_STATUSES, 'cancelled', patch, now);
}

/**
 * The reference hold after its holder became `next`: a holder that finished frees it, one moved
 * back to queued (a rerun) holds it again. Undefined when the hold does not change.
 */
export function holdAfter(hold: ReferenceHold | undefined, next: TaskRecord): ReferenceHold | undefined {
  const held = !isFinished(next.status);
  if (!hold || hold.taskId !== next.id || hold.held === held) return undefined;
  return { ...hold, held };
}

/** Mark one shard done, idempotently (a per-shard marker, never a bare counter). */
export function completeShard(shard: ShardProgress, now: number): ShardProgress | undefined {
  if (shard.done) return undefined;
  return { ...shard, done: true, finishedAt: now };
}

/**
 * Of the completions that saw every shard done, which should write the header first: they all
 * see the same markers (a done marker never changes), so ranking them by the marks, latest
 * `finishedAt` first (then highest index), gives every one of them the same order. Rank 0 is
 * the last shard to finish, the one most likely to have read after every mark.
 */
export function finisherRank(marks: ReadonlyArray<Pick<ShardProgress, 'index' | 'finishedAt'>>, shardIndex: number): number {
  const mine = marks.find((mark) => mark.index === shardIndex);
  if (!mine) return 0;
  const later = (a: Pick<ShardProgress, 'index' | 'finishedAt'>, b: Pick<ShardProgress, 'index' | 'finishedAt'>) =>
    (a.finishedAt ?? 0) > (b.finishedAt ?? 0) || ((a.finishedAt ?? 0) === (b.finishedAt ?? 0) && a.index > b.index);
  return marks.filter((mark) => later(mark, mine)).length;
}

/** What a shard completion needs to know of its iteration's own document. */
export interface IterationCompletion {
  shardCount: number;
  /** The shard whose completion saw every shard done and so finished the iteration, once known. */
  completedBy?: number;
}

export type ShardCompletionDecision =
  /** This completion saw every shard done first: it records itself as the finisher (guarded by the header's version). */
  | { kind: 'finish'; allDone: true; shardsDone: number }
  /** Nothing to write: `allDone` only for the finisher asking again (a redelivery that may not have deferred finalize yet). */
  | { kind: 'report'; allDone: boolean; shardsDone: number };

/**
 * After shard `shardIndex` was marked done and `shardsDone` of the iteration's shards were read
 * done: does this completion finish the iteration? Exactly one shard is ever the finisher, so
 * exactly one caller hears allDone (and a repeat of that same shard's completion, which is how
 * a finisher that crashed before deferring finalize gets another chance).
 */
export function shardCompletion(header: IterationCompletion, shardsDone: number, shardIndex: number): ShardCompletionDecision {
  if (header.completedBy !== undefined) return { kind: 'report', allDone: header.completedBy === shardIndex, shardsDone: header.shardCount };
  if (shardsDone >= header.shardCount) return { kind: 'finish', allDone: true, shardsDone: header.shardCount };
  return { kind: 'report', allDone: false, shardsDone };
}
