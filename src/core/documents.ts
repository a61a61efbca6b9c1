/**
 * The storage primitives a backend provides, and the StateStore and IterationStore the core
 * builds on them. A backend only stores: read documents with their version, commit a set of
 * writes each guarded by the version it expects (absent, or a number) as a whole or not at all,
 * and list. Every decision is lifecycle.ts's; this file runs read -> decide -> commit and retries
 * when another writer committed in between.
 */
import { CloudDeferError } from './errors.js';
import type { IterationRecord, IterationStore, ShardProgress, ShardProgressUpdate } from './iteration.js';
import { copyJson } from './json-copy.js';
import * as lifecycle from './lifecycle.js';
import type { ReferenceHold, TransitionPatch } from './lifecycle.js';
import type { TaskRecord, TaskStatus } from './records.js';
import type { AcquireLeaseInput, CreateTaskResult, LeaseOutcome, OutboxEntry, SettleInput, StateStore, TaskPage, TaskQuery } from './stores.js';

/** An iteration's own document: the record without its shards (each shard is a document) and the count of shards done. */
export type IterationHeader = Omit<IterationRecord, 'shards'> & {
  /** Set once, with completedBy, by the completion that saw every shard done. */
  shardsDone?: number;
  /** The shard whose completion finished the iteration (see lifecycle.shardCompletion). */
  completedBy?: number;
};

/** What each kind of document holds. Keys: task id, reference, task id, iteration id, "<iteration id>/<shard index>". */
export interface DocumentValues {
  task: TaskRecord;
  ref: ReferenceHold;
  outbox: OutboxEntry;
  iteration: IterationHeader;
  shard: ShardProgress & { iterationId: string };
}

export type DocumentKind = keyof DocumentValues;

export interface DocumentKey<K extends DocumentKind = DocumentKind> {
  kind: K;
  id: string;
}

export interface Versioned<T> {
  value: T;
  /** 1 for a new document, +1 per write. For tasks it is the record's own `version`. */
  version: number;
}

/** One write of a commit. `value: null` deletes the document. */
export type DocumentWrite = {
  [K in DocumentKind]: {
    kind: K;
    id: string;
    /** The version the decision was made on; 'absent' when the document must not exist. */
    expect: number | 'absent';
    value: DocumentValues[K] | null;
    /** When the backend may drop the document (epoch ms); documents read after it are absent. */
    expiresAt?: number;
  };
}[DocumentKind];

/** A backend's kind or collection names, `prefix` + suffix, each under its suffix with a lower-case first letter. */
export function prefixedNames<S extends string>(prefix: string, suffixes: readonly S[]): { readonly [N in S as Uncapitalize<N>]: string } {
  return Object.fromEntries(suffixes.map((suffix) => [suffix[0]!.toLowerCase() + suffix.slice(1), prefix + suffix])) as { [N in S as Uncapitalize<N>]: string };
}

/** The version a write gives its document: 1 for a new one, else one more than it expects. */
export const nextVersion = (write: Pick<DocumentWrite, 'expect'>): number => (write.expect === 'absent' ? 1 : write.expect + 1);

/** True when the live document `doc` is not the one the write was decided on: the round is lost. */
export const isStale = (write: Pick<DocumentWrite, 'expect'>, doc: Versioned<unknown> | undefined): boolean =>
  write.expect === 'absent' ? doc !== undefined : doc?.version !== write.expect;

/** The storage primitives. Documents past their `expiresAt` read as absent, also for `expect`. */
export interface DocumentStore {
  readonly kind: string;
  /** Optional: the backend picks task ids (e.g. so a task and its reference share a hash slot). */
  newTaskId?(reference: string | undefined): string;
  /** Each key's document with its version, or undefined; one consistent snapshot where the backend has one. */
  read(keys: readonly DocumentKey[]): Promise<Array<Versioned<unknown> | undefined>>;
  /** ATOMIC: apply every write, or none when any document's version is not the one expected. Returns whether it applied. */
  commit(writes: readonly DocumentWrite[]): Promise<boolean>;
  /** Task records newest first, filtered as the console asks, with an opaque cursor. */
  listTasks(query: TaskQuery): Promise<TaskPage>;
  /** Outbox entries created before `createdBefore`, oldest first. */
  listOutbox(createdBefore: number, limit: number): Promise<OutboxEntry[]>;
  /** Iteration headers newest first. */
  listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationHeader[]; nextCursor?: string }>;
}

/**
 * How long a decision whose commit keeps losing to other writers is tried again. The budget is
 * time-based because one lost round costs very different amounts: microseconds on memory, a
 * round trip on Redis, a lock wait of about 2 s on Google's Datastore mode and Firestore.
 */
export interface RetryPolicy {
  /** Stop deciding again once this long has passed since the first round (ms). */
  budgetMs: number;
  /** And after this many rounds, whatever the time. */
  maxRounds: number;
  /** The pause after the first lost round is at most this (ms); each further one doubles it. */
  firstPauseMs: number;
  /** No pause is longer than this (ms). */
  maxPauseMs: number;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = { budgetMs: 60_000, maxRounds: 1_000, firstPauseMs: 1, maxPauseMs: 1_000 };

/**
 * The pause before round `lost + 1` after `lost` lost rounds: exponential backoff with full
 * jitter (uniform in [0, min(max, first * 2^(lost - 1))]), so writers that collided spread out.
 */
export function retryPause(lost: number, policy: Pick<RetryPolicy, 'firstPauseMs' | 'maxPauseMs'>, random: () => number = Math.random): number {
  if (lost <= 0) return 0;
  const ceiling = Math.min(policy.maxPauseMs, policy.firstPauseMs * 2 ** Math.min(lost - 1, 30));
  return Math.floor(random() * ceiling);
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Run `round` (read, decide) and commit its writes until a commit applies or the policy's budget is spent. */
async function commitRounds<T>(
  docs: DocumentStore,
  policy: RetryPolicy,
  what: string,
  round: () => Promise<{ writes: DocumentWrite[]; result: T }>,
): Promise<T> {
  const started = Date.now();
  let lost = 0;
  for (;;) {
    const { writes, result } = await round();
    if (writes.length === 0 || (await docs.commit(writes))) return result;
    lost += 1;
    const elapsed = Date.now() - started;
    if (lost >= policy.maxRounds || elapsed >= policy.budgetMs) {
      throw new CloudDeferError(
        'STORE_UNAVAILABLE',
        `Could not ${what}: other writers kept changing the same documents (${lost} rounds lost in ${elapsed} ms). ` +
          'Try again later; if it keeps happening, fewer callers should write the same task, reference or iteration at once.',
      );
    }
    const wait = Math.min(retryPause(lost, policy), Math.max(policy.budgetMs - elapsed, 0));
    if (wait > 0) await pause(wait);
  }
}

/** Options of the primitives-based stores. */
export interface DocumentStoreOptions {
  /** How lost commits are retried (defaults: DEFAULT_RETRY). */
  retry?: Partial<RetryPolicy>;
}

type Read<K extends DocumentKind> = Versioned<DocumentValues[K]> | undefined;

/** The most rounds a completion that saw every shard done waits for the ones ranked before it. */
const MAX_FINISHER_WAITS = 8;

/** Shards read per round trip when a completion checks whether every shard is done. */
const SHARD_PAGE = 50;

export const shardId = (iterationId: string, index: number): string => `${iterationId}/${index}`;

/** A write that replaces `current` (or creates the document when there is none). */
function put<K extends DocumentKind>(kind: K, id: string, current: Read<K>, value: DocumentValues[K], expiresAt?: number): DocumentWrite {
  return { kind, id, expect: current ? current.version : 'absent', value, ...(expiresAt !== undefined ? { expiresAt } : {}) } as DocumentWrite;
}

/** A task write: the record carries its own next version. */
function putTask(current: Read<'task'>, next: TaskRecord): DocumentWrite {
  return put('task', next.id, current, next, next.expiresAt);
}

/**
 * A transaction hook that can also stage arbitrary document writes in a user's transaction (a
 * task's `succeeded` record, see TaskContext.recordSuccessIn): `decide` reads through the
 * transaction, and its writes commit or roll back with the user's own.
 */
export interface WriteStagingHook<Tx = unknown> {
  stageWrites(transaction: Tx, decide: (read: TaskRead) => Promise<DocumentWrite[]>): Promise<void>;
}

export function canStageWrites<H extends object>(hook: H): hook is H & WriteStagingHook {
  return typeof (hook as Partial<WriteStagingHook>).stageWrites === 'function';
}

/** Reads a task record or a reference hold, as the store or a user's transaction sees it. */
export type TaskRead = <K extends 'task' | 'ref'>(kind: K, id: string) => Promise<Versioned<DocumentValues[K]> | undefined>;

/**
 * The writes that rewrite task `id` with `change` and free its reference when the change finished
 * it, decided on what `read` returns (the store's documents, or a user's transaction's reads);
 * no writes when there is no record or `change` refuses it.
 */
export async function taskChangeWrites(
  read: TaskRead,
  id: string,
  change: (record: TaskRecord | undefined) => TaskRecord | undefined,
): Promise<{ writes: DocumentWrite[]; result: TaskRecord | undefined }> {
  const current = await read('task', id);
  const next = change(current?.value);
  if (!current || !next) return { writes: [], result: undefined };
  const writes = [putTask(current, next)];
  if (next.reference !== undefined) {
    const hold = await read('ref', next.reference);
    const freed = hold && lifecycle.holdAfter(hold.value, next);
    // The hold lives as long as its holder's record, so findByReference finds it while it is kept.
    if (hold && (freed || (hold.value.taskId === id && next.expiresAt !== current.value.expiresAt))) {
      writes.push(put('ref', next.reference, hold, freed ?? hold.value, next.expiresAt));
    }
  }
  return { writes, result: next };
}

/** How many created-but-not-yet-leased records a store remembers, and the inline arguments it keeps for one. */
const REMEMBERED_RECORDS = 512;
const REMEMBERED_ARGS_CHARS = 4096;

export class DocumentStateStore implements StateStore {
  private readonly retry: RetryPolicy;
  /**
   * Task records this store created and has not leased since, oldest first. A delivery that reaches
   * the instance that deferred its task (always, with one instance) decides its lease on the record
   * as created and skips a read: the commit's version check still refuses the decision when another
   * writer changed the record, and a decision that would write nothing is made again on a read.
   */
  private readonly created = new Map<string, TaskRecord>();

  constructor(
    private readonly docs: DocumentStore,
    options: DocumentStoreOptions = {},
  ) {
    if (docs.newTaskId) this.newTaskId = (reference) => docs.newTaskId!(reference);
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  newTaskId?: (reference: string | undefined) => string;

  /** Called by every create that committed `record`; a copy is kept, so later changes to the caller's object do not count. */
  protected rememberCreated(record: TaskRecord): void {
    if ((record.argsJson?.length ?? 0) > REMEMBERED_ARGS_CHARS) return;
    if (this.created.size >= REMEMBERED_RECORDS) this.created.delete(this.created.keys().next().value!);
    this.created.set(record.id, copyJson(record));
  }

  /** The remembered record of `id`, forgotten as it is taken; none once past its retention (it reads as absent then). */
  private takeCreated(id: string, now: number): Versioned<TaskRecord> | undefined {
    const record = this.created.get(id);
    if (!record) return undefined;
    this.created.delete(id);
    return record.expiresAt > now && record.expiresAt > Date.now() ? { value: record, version: record.version } : undefined;
  }

  private async readOne<K extends DocumentKind>(kind: K, id: string): Promise<Read<K>> {
    const [doc] = await this.docs.read([{ kind, id }]);
    return doc as Read<K>;
  }

  /** read -> decide -> commit until a commit applies (or the decision writes nothing). */
  private decide<T>(what: string, round: () => Promise<{ writes: DocumentWrite[]; result: T }>): Promise<T> {
    return commitRounds(this.docs, this.retry, what, round);
  }

  /** Rewrites a task record with `change` and frees its reference when the change finished it. */
  private async changeTask(
    id: string,
    what: string,
    change: (record: TaskRecord | undefined) => TaskRecord | undefined,
    known?: TaskRecord,
  ): Promise<TaskRecord | undefined> {
    // A caller that knows the record as it last wrote it saves the first round's read: the
    // commit's version check still refuses a stale decision, and later rounds read.
    this.created.delete(id);
    let assumed: Read<'task'> = known && known.id === id ? { value: known, version: known.version } : undefined;
    const read: TaskRead = (kind, key) => this.readOne(kind, key);
    return this.decide(what, () => {
      const first = assumed;
      assumed = undefined;
      const readFirst: TaskRead = (kind, key) => (first && kind === 'task' ? Promise.resolve(first as Versioned<never>) : read(kind, key));
      return taskChangeWrites(readFirst, id, change);
    });
  }

  createTask(record: TaskRecord, now: number): Promise<CreateTaskResult> {
    return this.decide('create a task', async () => {
      const reference = record.reference;
      const [existing, hold] = (await this.docs.read(
        reference === undefined
          ? [{ kind: 'task', id: record.id }]
          : [
              { kind: 'task', id: record.id },
              { kind: 'ref', id: reference },
            ],
      )) as [Read<'task'>, Read<'ref'>?];
      const holder = hold?.value.held ? await this.readOne('task', hold.value.taskId) : undefined;
      const decision = lifecycle.createWithReference(record, now, {
        ...(existing ? { existing: existing.value } : {}),
        ...(hold ? { hold: hold.value } : {}),
        ...(holder ? { holder: holder.value } : {}),
      });
      if (decision.kind === 'exists') throw new CloudDeferError('TASK_ALREADY_EXISTS', `A task record with id ${record.id} already exists.`);
      if (decision.kind === 'held') return { writes: [], result: { created: false, existing: decision.existing } as CreateTaskResult };
      // The hold is guarded by the version read: a concurrent defer with the same reference makes this round again.
      const writes = [putTask(undefined, decision.record)];
      if (decision.hold) writes.push(put('ref', decision.hold.reference, hold, decision.hold, decision.record.expiresAt));
      return { writes, result: { created: true } as CreateTaskResult };
    }).then((result) => {
      if (result.created) this.rememberCreated(record);
      return result;
    });
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    return (await this.readOne('task', id))?.value;
  }

  async findByReference(reference: string): Promise<TaskRecord | undefined> {
    if (!reference) return undefined;
    const hold = await this.readOne('ref', reference);
    return hold && (await this.getTask(hold.value.taskId));
  }

  acquireLease(id: string, input: AcquireLeaseInput): Promise<LeaseOutcome> {
    let assumed = this.takeCreated(id, input.now);
    return this.decide('take a task lease', async () => {
      let current = assumed;
      assumed = undefined;
      let decision = current && lifecycle.acquireLease(current.value, input);
      // Only a lease taken on the remembered record is checked by its commit; any other answer is read.
      if (!decision || decision.kind !== 'acquired' || !decision.changed) {
        current = await this.readOne('task', id);
        decision = lifecycle.acquireLease(current?.value, input);
      }
      if (decision.kind === 'missing') return { writes: [], result: { kind: 'missing' } as LeaseOutcome };
      const result = { kind: decision.kind, record: decision.record } as LeaseOutcome;
      const writes = decision.kind === 'acquired' && decision.changed ? [putTask(current, decision.record)] : [];
      return { writes, result };
    });
  }

  /** Extend a run's live lease; undefined when `owner` no longer holds it. */
  renewLease(id: string, input: { owner: string; now: number; leaseMs: number }): Promise<TaskRecord | undefined> {
    return this.changeTask(id, 'renew a task lease', (record) => lifecycle.renewLease(record, input));
  }

  /** Give a run's lease back without an outcome: the record waits as `retrying`. */
  releaseLease(id: string, input: { owner: string; now: number }): Promise<TaskRecord | undefined> {
    return this.changeTask(id, 'release a task lease', (record) => lifecycle.releaseLease(record, input));
  }

  settle(id: string, input: SettleInput): Promise<TaskRecord | undefined> {
    return this.changeTask(id, 'settle a task', (record) => lifecycle.settle(record, input), input.last);
  }

  transition(id: string, from: readonly TaskStatus[], to: TaskStatus, patch: TransitionPatch, now: number): Promise<TaskRecord | undefined> {
    return this.changeTask(id, 'change a task status', (record) => lifecycle.transition(record, from, to, patch, now));
  }

  listTasks(query: TaskQuery): Promise<TaskPage> {
    return this.docs.listTasks(query);
  }

  async deleteTask(id: string): Promise<void> {
    this.created.delete(id);
    await this.decide('delete a task', async () => {
      const current = await this.readOne('task', id);
      if (!current) return { writes: [], result: undefined };
      const writes: DocumentWrite[] = [{ kind: 'task', id, expect: current.version, value: null }];
      const reference = current.value.reference;
      const hold = reference === undefined ? undefined : await this.readOne('ref', reference);
      if (reference !== undefined && hold && hold.value.taskId === id) writes.push({ kind: 'ref', id: reference, expect: hold.version, value: null });
      return { writes, result: undefined };
    });
  }

  async addOutbox(entry: OutboxEntry): Promise<void> {
    await this.decide('add an outbox entry', async () => {
      const current = await this.readOne('outbox', entry.taskId);
      return { writes: [put('outbox', entry.taskId, current, entry)], result: undefined };
    });
  }

  listOutbox(createdBefore: number, limit: number): Promise<OutboxEntry[]> {
    return this.docs.listOutbox(createdBefore, limit);
  }

  async removeOutbox(taskId: string): Promise<void> {
    await this.decide('remove an outbox entry', async () => {
      const current = await this.readOne('outbox', taskId);
      return { writes: current ? [{ kind: 'outbox', id: taskId, expect: current.version, value: null }] : [], result: undefined };
    });
  }
}

/** deferIteration's bookkeeping over the same primitives: a header document and one document per shard. */
export class DocumentIterationStore implements IterationStore {
  private readonly retry: RetryPolicy;

  constructor(
    private readonly docs: DocumentStore,
    options: DocumentStoreOptions = {},
  ) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  private async header(id: string): Promise<Read<'iteration'>> {
    const [doc] = await this.docs.read([{ kind: 'iteration', id }]);
    return doc as Read<'iteration'>;
  }

  private async shards(header: IterationHeader): Promise<Array<Read<'shard'>>> {
    if (header.shardCount === 0) return [];
    const keys = Array.from({ length: header.shardCount }, (_, index) => ({ kind: 'shard' as const, id: shardId(header.id, index) }));
    return (await this.docs.read(keys)) as Array<Read<'shard'>>;
  }

  private async until(what: string, round: () => Promise<DocumentWrite[]>): Promise<void> {
    await commitRounds(this.docs, this.retry, what, async () => ({ writes: await round(), result: undefined }));
  }

  async createIteration(record: IterationRecord): Promise<void> {
    const { shards, ...header } = record;
    await this.until('create an iteration', async () => {
      if (await this.header(record.id)) return [];
      return [
        put('iteration', record.id, undefined, header, record.expiresAt),
        ...shards.map((shard) => put('shard', shardId(record.id, shard.index), undefined, { ...shard, iterationId: record.id }, record.expiresAt)),
      ];
    });
  }

  async getIteration(id: string): Promise<IterationRecord | undefined> {
    const header = await this.header(id);
    if (!header) return undefined;
    const shards = (await this.shards(header.value)).map((doc, index) => {
      if (!doc) return { index, processed: 0, errors: 0, done: false };
      const { iterationId: _id, ...shard } = doc.value;
      return shard;
    });
    const { shardsDone: _done, completedBy: _by, ...fields } = header.value;
    return { ...fields, shards };
  }

  async listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationRecord[]; nextCursor?: string }> {
    const page = await this.docs.listIterations(query);
    const records = await Promise.all(page.records.map(async (header) => (await this.getIteration(header.id)) ?? { ...header, shards: [] }));
    return { records, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  }

  async startIteration(id: string, shardCount: number, now: number): Promise<void> {
    await this.until('start an iteration', async () => {
      const header = await this.header(id);
      if (!header || header.value.status !== 'splitting') return [];
      const next: IterationHeader = { ...header.value, shardCount, status: 'running', updatedAt: now };
      return [
        put('iteration', id, header, next, next.expiresAt),
        ...Array.from(
          { length: shardCount },
          (_, index) =>
            ({
              kind: 'shard',
              id: shardId(id, index),
              expect: 'absent',
              value: { index, processed: 0, errors: 0, done: false, iterationId: id },
              expiresAt: next.expiresAt,
            }) as DocumentWrite,
        ),
      ];
    });
  }

  /** Only the shard's own document is written: shards never contend with each other. */
  private async changeShard(id: string, index: number, what: string, change: (shard: ShardProgress) => ShardProgress | undefined): Promise<void> {
    await this.until(what, async () => {
      const [header, shard] = (await this.docs.read([
        { kind: 'iteration', id },
        { kind: 'shard', id: shardId(id, index) },
      ])) as [Read<'iteration'>, Read<'shard'>];
      if (!header || !shard) return [];
      const next = change(shard.value);
      return next ? [put('shard', shardId(id, index), shard, { ...next, iterationId: id }, header.value.expiresAt)] : [];
    });
  }

  async recordShardProgress(id: string, shardIndex: number, update: ShardProgressUpdate): Promise<void> {
    await this.changeShard(id, shardIndex, 'record shard progress', (shard) => ({
      ...shard,
      processed: shard.processed + update.processedDelta,
      errors: shard.errors + update.errorsDelta,
      startedAt: shard.startedAt ?? update.now,
      ...(update.lastError ? { lastError: update.lastError } : {}),
    }));
  }

  /**
   * Two steps, so that shards never contend on one document: the shard's own marker is written
   * alone; then the shards are read, and only a completion that sees them all done writes the
   * header (guarded by its version), naming itself the finisher. Of many concurrent completions
   * exactly one wins that write and hears allDone; a repeated completion never counts twice.
   * Those that see every shard done at once take turns (finisherRank) instead of all writing.
   */
  async completeShard(id: string, shardIndex: number, now: number): Promise<{ allDone: boolean; shardsDone: number }> {
    const marking = Date.now();
    const marked = await commitRounds(this.docs, this.retry, 'complete a shard', async () => {
      const [header, shard] = (await this.docs.read([
        { kind: 'iteration', id },
        { kind: 'shard', id: shardId(id, shardIndex) },
      ])) as [Read<'iteration'>, Read<'shard'>];
      if (!header || !shard) return { writes: [], result: false };
      const done = lifecycle.completeShard(shard.value, now);
      return { writes: done ? [put('shard', shardId(id, shardIndex), shard, { ...done, iterationId: id }, header.value.expiresAt)] : [], result: true };
    });
    if (!marked) return { allDone: false, shardsDone: 0 };
    // About what one round (read, decide, commit) takes on this store: the mark's own round.
    const roundMs = Date.now() - marking;
    let yielded = false;
    return commitRounds(this.docs, this.retry, "finish an iteration's shards", async () => {
      for (;;) {
        const header = await this.header(id);
        if (!header) return { writes: [], result: { allDone: false, shardsDone: 0 } };
        // Once a finisher is named the shards need not be read again.
        const done = header.value.completedBy === undefined ? await this.doneShards(header.value, shardIndex) : { count: header.value.shardCount, marks: [] };
        const decision = lifecycle.shardCompletion(header.value, done.count, shardIndex);
        const result = { allDone: decision.allDone, shardsDone: decision.shardsDone };
        if (decision.kind === 'report') return { writes: [], result };
        // Several completions may see every shard done at once. Writing the header together, they
        // would deadlock on a store that locks pessimistically (Datastore mode times every party
        // out, and they meet again): all but the first in finisherRank's order give the ones
        // before them a round each, watching the header, and write only if nobody has.
        const rank = yielded ? 0 : lifecycle.finisherRank(done.marks, shardIndex);
        yielded = true;
        if (rank > 0) {
          await this.watchForFinisher(id, Math.min(rank, MAX_FINISHER_WAITS), roundMs + 5);
          continue;
        }
        const next: IterationHeader = { ...header.value, shardsDone: decision.shardsDone, completedBy: shardIndex, updatedAt: now };
        return { writes: [put('iteration', id, header, next, next.expiresAt)], result };
      }
    });
  }

  /** Waits up to `rounds` pauses of `pauseMs`, until the iteration's header names a finisher. */
  private async watchForFinisher(id: string, rounds: number, pauseMs: number): Promise<void> {
    for (let round = 0; round < rounds; round += 1) {
      await pause(pauseMs);
      if ((await this.header(id))?.value.completedBy !== undefined) return;
    }
  }

  /**
   * How many shards are done, read in pages starting after `from` and stopping at the first page
   * with a shard not done: all but the last completions of a 1,000-shard iteration read one page,
   * not every shard. Short of all, the count is of the pages read. With the done shards' markers.
   */
  private async doneShards(header: IterationHeader, from: number): Promise<{ count: number; marks: ShardProgress[] }> {
    const order = Array.from({ length: header.shardCount }, (_, k) => (from + 1 + k) % header.shardCount);
    const marks: ShardProgress[] = [];
    for (let start = 0; start < order.length; start += SHARD_PAGE) {
      const keys = order.slice(start, start + SHARD_PAGE).map((index) => ({ kind: 'shard' as const, id: shardId(header.id, index) }));
      const page = (await this.docs.read(keys)) as Array<Read<'shard'>>;
      for (const doc of page) if (doc?.value.done) marks.push(doc.value);
      if (marks.length < start + page.length) return { count: marks.length, marks };
    }
    return { count: marks.length, marks };
  }

  async finishIteration(id: string, status: 'finalizing' | 'succeeded' | 'failed', now: number): Promise<void> {
    await this.until('finish an iteration', async () => {
      const header = await this.header(id);
      if (!header) return [];
      const next: IterationHeader = { ...header.value, status, updatedAt: now, ...(status !== 'finalizing' ? { finishedAt: now } : {}) };
      return [put('iteration', id, header, next, next.expiresAt)];
    });
  }

  async deleteIteration(id: string): Promise<void> {
    await this.until('delete an iteration', async () => {
      const header = await this.header(id);
      if (!header) return [];
      const shards = await this.shards(header.value);
      return [
        { kind: 'iteration', id, expect: header.version, value: null } as DocumentWrite,
        ...shards.flatMap((doc, index) => (doc ? [{ kind: 'shard', id: shardId(id, index), expect: doc.version, value: null } as DocumentWrite] : [])),
      ];
    });
  }
}
