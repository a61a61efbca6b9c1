/**
 * In-memory stores: the embedded default and the reference implementation of the store contract.
 * Every method runs to completion without awaiting in between, so each one is atomic in Node's
 * single thread, which is exactly what the contract asks of the real backends.
 */
import { CloudDeferError } from '../../src/core/errors.js';
import { canTransition, isFinished, MAX_HISTORY, type TaskRecord, type TaskStatus } from '../../src/core/records.js';
import type {
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
} from '../../src/core/stores.js';
import { decodeCursor, encodeCursor, newestFirst } from '../../src/core/cursor.js';
import type { IterationRecord, IterationStore, ShardProgressUpdate } from '../../src/core/iteration.js';

export interface MemoryStoresOptions {
  /** Where "now" comes from for expiry; tests can move it. */
  now?: () => number;
}

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

class MemoryPayloadStore implements PayloadStore {
  private readonly items = new Map<string, Expiring<Uint8Array>>();
  constructor(private readonly now: () => number) {}

  async put(id: string, data: Uint8Array, ttlMs: number): Promise<void> {
    this.items.set(id, { value: Uint8Array.from(data), expiresAt: this.now() + ttlMs });
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    const item = this.items.get(id);
    if (!item) return undefined;
    if (item.expiresAt <= this.now()) {
      this.items.delete(id);
      return undefined;
    }
    return Uint8Array.from(item.value);
  }

  async delete(id: string): Promise<void> {
    this.items.delete(id);
  }

  /** Inspection aid for tests: the stored bytes and their expiry, without expiry applied. */
  rawItem(id: string): { data: Uint8Array; expiresAt: number } | undefined {
    const item = this.items.get(id);
    return item && { data: Uint8Array.from(item.value), expiresAt: item.expiresAt };
  }

  /** Test/inspection aid: how many payloads are held (expired ones excluded). */
  size(): number {
    const now = this.now();
    let n = 0;
    for (const item of this.items.values()) if (item.expiresAt > now) n += 1;
    return n;
  }
}

/**
 * Records are copied in and out so callers can never mutate stored state by accident. A record
 * is flat but for its error and attempt history, so a targeted copy does what structuredClone
 * does at a fraction of the cost (this runs on every defer and every run).
 */
function copyError<T extends TaskRecord['lastError']>(error: T): T {
  return error && ({ ...error } as T);
}

const copy = (record: TaskRecord): TaskRecord => ({
  ...record,
  ...(record.lastError ? { lastError: copyError(record.lastError) } : {}),
  history: record.history.map((attempt) => (attempt.error ? { ...attempt, error: copyError(attempt.error)! } : { ...attempt })),
});

class MemoryStateStore implements StateStore {
  private readonly records = new Map<string, TaskRecord>();
  /** reference -> id of the newest task created with it. */
  private readonly references = new Map<string, string>();
  private readonly outbox = new Map<string, OutboxEntry>();

  constructor(private readonly now: () => number) {}

  private live(id: string): TaskRecord | undefined {
    const record = this.records.get(id);
    if (!record) return undefined;
    if (record.expiresAt <= this.now()) {
      this.forget(record);
      return undefined;
    }
    return record;
  }

  private forget(record: TaskRecord): void {
    this.records.delete(record.id);
    if (record.reference && this.references.get(record.reference) === record.id) {
      this.references.delete(record.reference);
    }
  }

  async createTask(record: TaskRecord, now: number): Promise<CreateTaskResult> {
    if (this.live(record.id)) {
      throw new CloudDeferError('TASK_ALREADY_EXISTS', `A task record with id ${record.id} already exists.`);
    }
    if (record.reference) {
      const holderId = this.references.get(record.reference);
      const holder = holderId ? this.live(holderId) : undefined;
      if (holder && !isFinished(holder.status) && (holder.uniqueUntil === undefined || holder.uniqueUntil > now)) {
        return { created: false, existing: copy(holder) };
      }
      this.references.set(record.reference, record.id);
    }
    this.records.set(record.id, copy(record));
    return { created: true };
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    const record = this.live(id);
    return record && copy(record);
  }

  async findByReference(reference: string): Promise<TaskRecord | undefined> {
    const id = this.references.get(reference);
    const record = id ? this.live(id) : undefined;
    return record && copy(record);
  }

  async acquireLease(id: string, input: AcquireLeaseInput): Promise<LeaseOutcome> {
    const record = this.live(id);
    if (!record) return { kind: 'missing' };
    if (isFinished(record.status)) return { kind: 'finished', record: copy(record) };
    // The same caller asking again (its first reply was lost): it already holds the lease.
    if (record.status === 'running' && record.leaseOwner === input.owner) return { kind: 'acquired', record: copy(record) };
    if (record.status === 'running' && (record.leaseUntil ?? 0) > input.now) {
      return { kind: 'busy', record: copy(record) };
    }
    record.status = 'running';
    record.leaseOwner = input.owner;
    record.leaseUntil = input.now + input.leaseMs;
    record.attempts += 1;
    record.executionCount = input.executionCount;
    record.startedAt ??= input.now;
    record.updatedAt = input.now;
    record.version += 1;
    return { kind: 'acquired', record: copy(record) };
  }

  async settle(id: string, input: SettleInput): Promise<TaskRecord | undefined> {
    const record = this.live(id);
    if (!record || record.status !== 'running' || record.leaseOwner !== input.owner) return undefined;
    record.status = input.status;
    record.leaseOwner = undefined;
    record.leaseUntil = undefined;
    record.durationMs = input.attempt.durationMs;
    record.updatedAt = input.now;
    record.expiresAt = input.expiresAt;
    if (input.error) record.lastError = input.error;
    record.history.push(input.attempt);
    if (record.history.length > MAX_HISTORY) record.history.splice(0, record.history.length - MAX_HISTORY);
    // A finished holder no longer blocks its reference: createTask checks the holder's status.
    if (isFinished(input.status)) record.finishedAt = input.now;
    record.version += 1;
    return copy(record);
  }

  async transition(
    id: string,
    from: readonly TaskStatus[],
    to: TaskStatus,
    patch: Partial<Pick<TaskRecord, 'lastError' | 'finishedAt' | 'eta' | 'cloudTaskName' | 'expiresAt' | 'uniqueUntil'>>,
    now: number,
  ): Promise<TaskRecord | undefined> {
    const record = this.live(id);
    if (!record || !from.includes(record.status) || !canTransition(record.status, to)) return undefined;
    Object.assign(record, patch);
    record.status = to;
    record.updatedAt = now;
    record.version += 1;
    if (to !== 'running') {
      record.leaseOwner = undefined;
      record.leaseUntil = undefined;
    }
    if (isFinished(to)) record.finishedAt ??= now;
    return copy(record);
  }

  async listTasks(query: TaskQuery): Promise<TaskPage> {
    const limit = Math.min(Math.max(query.limit ?? 50, 1), 1000);
    const after = query.cursor ? decodeCursor(query.cursor) : undefined;
    const now = this.now();
    const matches: TaskRecord[] = [];
    for (const record of this.records.values()) {
      if (record.expiresAt <= now) continue;
      if (query.status && record.status !== query.status) continue;
      if (query.queue && record.queue !== query.queue) continue;
      if (query.taskName && record.taskName !== query.taskName) continue;
      if (query.reference && record.reference !== query.reference) continue;
      if (query.iterationId && record.iterationId !== query.iterationId) continue;
      if (after && newestFirst(record, after) <= 0) continue;
      matches.push(record);
    }
    matches.sort(newestFirst);
    const page = matches.slice(0, limit);
    const last = page[page.length - 1];
    return {
      records: page.map(copy),
      nextCursor: matches.length > limit && last ? encodeCursor(last) : undefined,
    };
  }

  async deleteTask(id: string): Promise<void> {
    const record = this.records.get(id);
    if (record) this.forget(record);
  }

  async addOutbox(entry: OutboxEntry): Promise<void> {
    this.outbox.set(entry.taskId, structuredClone(entry));
  }

  async listOutbox(createdBefore: number, limit: number): Promise<OutboxEntry[]> {
    return [...this.outbox.values()]
      .filter((entry) => entry.createdAt < createdBefore)
      .sort((a, b) => a.createdAt - b.createdAt)
      .slice(0, Math.max(limit, 0))
      .map((entry) => structuredClone(entry));
  }

  async removeOutbox(taskId: string): Promise<void> {
    this.outbox.delete(taskId);
  }

  /** Inspection aids for tests: what is stored, without expiry applied. */
  rawSize(): number {
    return this.records.size;
  }

  rawRecord(id: string): TaskRecord | undefined {
    const record = this.records.get(id);
    return record && copy(record);
  }

  rawOutbox(taskId: string): OutboxEntry | undefined {
    const entry = this.outbox.get(taskId);
    return entry && structuredClone(entry);
  }
}

class MemoryIterationStore implements IterationStore {
  private readonly records = new Map<string, IterationRecord>();
  constructor(private readonly now: () => number) {}

  private live(id: string): IterationRecord | undefined {
    const record = this.records.get(id);
    if (record && record.expiresAt <= this.now()) {
      this.records.delete(id);
      return undefined;
    }
    return record;
  }

  async createIteration(record: IterationRecord): Promise<void> {
    if (!this.live(record.id)) this.records.set(record.id, structuredClone(record));
  }

  async getIteration(id: string): Promise<IterationRecord | undefined> {
    const record = this.live(id);
    return record && structuredClone(record);
  }

  async listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationRecord[]; nextCursor?: string }> {
    const limit = Math.min(Math.max(query.limit ?? 50, 1), 1000);
    const after = query.cursor ? decodeCursor(query.cursor) : undefined;
    const now = this.now();
    const all = [...this.records.values()]
      .filter((r) => r.expiresAt > now && (!after || newestFirst(r, after) > 0))
      .sort(newestFirst);
    const page = all.slice(0, limit);
    const last = page[page.length - 1];
    return { records: page.map((r) => structuredClone(r)), nextCursor: all.length > limit && last ? encodeCursor(last) : undefined };
  }

  async startIteration(id: string, shardCount: number, now: number): Promise<void> {
    const record = this.live(id);
    if (!record || record.status !== 'splitting') return;
    record.shardCount = shardCount;
    record.shards = Array.from({ length: shardCount }, (_, index) => ({ index, processed: 0, errors: 0, done: false }));
    record.status = 'running';
    record.updatedAt = now;
  }

  async recordShardProgress(id: string, shardIndex: number, update: ShardProgressUpdate): Promise<void> {
    const shard = this.live(id)?.shards[shardIndex];
    if (!shard) return;
    shard.processed += update.processedDelta;
    shard.errors += update.errorsDelta;
    shard.startedAt ??= update.now;
    if (update.lastError) shard.lastError = update.lastError;
  }

  async completeShard(id: string, shardIndex: number, now: number): Promise<{ allDone: boolean; shardsDone: number }> {
    const record = this.live(id);
    if (!record) return { allDone: false, shardsDone: 0 };
    const shard = record.shards[shardIndex];
    if (shard && !shard.done) {
      shard.done = true;
      shard.finishedAt = now;
      record.updatedAt = now;
    }
    const shardsDone = record.shards.filter((s) => s.done).length;
    return { allDone: shardsDone === record.shardCount, shardsDone };
  }

  async finishIteration(id: string, status: 'finalizing' | 'succeeded' | 'failed', now: number): Promise<void> {
    const record = this.live(id);
    if (!record) return;
    record.status = status;
    record.updatedAt = now;
    if (status !== 'finalizing') record.finishedAt = now;
  }

  async deleteIteration(id: string): Promise<void> {
    this.records.delete(id);
  }
}

/**
 * A unit of work over the memory stores. Defers given `{ transaction: tx }` are written and
 * enqueued only when `commit()` runs; `rollback()` drops them.
 */
export class MemoryTransaction {
  private readonly staged: Array<{ staged: StagedDefer; afterCommit: () => Promise<void> }> = [];
  private state: 'open' | 'committed' | 'rolledBack' = 'open';

  constructor(private readonly stores: MemoryStores) {}

  /** @internal used by the memory TransactionHook. */
  add(staged: StagedDefer, afterCommit: () => Promise<void>): void {
    if (this.state !== 'open') {
      throw new CloudDeferError('INVALID_STATE', `This transaction is already ${this.state}; start a new one to defer.`);
    }
    this.staged.push({ staged, afterCommit });
  }

  get status(): 'open' | 'committed' | 'rolledBack' {
    return this.state;
  }

  async commit(): Promise<void> {
    if (this.state !== 'open') throw new CloudDeferError('INVALID_STATE', `This transaction is already ${this.state}.`);
    this.state = 'committed';
    const now = Date.now();
    const created: Array<() => Promise<void>> = [];
    for (const { staged, afterCommit } of this.staged) {
      // A reference held by an unfinished task makes that defer a no-op, as outside a transaction.
      const result = await this.stores.state.createTask(staged.record, now);
      if (!result.created) continue;
      if (staged.payload) await this.stores.payloads.put(staged.payload.id, staged.payload.data, staged.payload.ttlMs);
      await this.stores.state.addOutbox(staged.outbox);
      created.push(afterCommit);
    }
    // Enqueue after everything is written, like the real backends' hooks.
    for (const afterCommit of created) await afterCommit();
  }

  rollback(): void {
    if (this.state !== 'open') return;
    this.state = 'rolledBack';
    this.staged.length = 0;
  }
}

class MemoryTransactionHook implements TransactionHook<MemoryTransaction> {
  readonly name = 'memory';
  accepts(transaction: unknown): transaction is MemoryTransaction {
    return transaction instanceof MemoryTransaction;
  }
  async stage(transaction: MemoryTransaction, staged: StagedDefer, afterCommit: () => Promise<void>): Promise<void> {
    transaction.add(staged, afterCommit);
  }
}

export interface MemoryStores extends Stores {
  readonly kind: 'memory';
  readonly payloads: MemoryPayloadStore;
  readonly state: MemoryStateStore;
  readonly iterations: MemoryIterationStore;
  /** Start a transaction to pass as `{ transaction }` to defer(). */
  beginTransaction(): MemoryTransaction;
  /** Run `work` in a transaction: commit when it resolves, roll back when it throws. */
  transaction<T>(work: (tx: MemoryTransaction) => Promise<T>): Promise<T>;
}

export function memoryStores(options: MemoryStoresOptions = {}): MemoryStores {
  const now = options.now ?? Date.now;
  const stores: MemoryStores = {
    kind: 'memory',
    payloads: new MemoryPayloadStore(now),
    state: new MemoryStateStore(now),
    iterations: new MemoryIterationStore(now),
    transactions: [new MemoryTransactionHook()],
    beginTransaction: () => new MemoryTransaction(stores),
    async transaction<T>(work: (tx: MemoryTransaction) => Promise<T>): Promise<T> {
      const tx = new MemoryTransaction(stores);
      let result: T;
      try {
        result = await work(tx);
      } catch (err) {
        tx.rollback();
        throw err;
      }
      await tx.commit();
      return result;
    },
  };
  return stores;
}

export type { MemoryPayloadStore, MemoryStateStore, MemoryIterationStore };
