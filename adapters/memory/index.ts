/**
 * In-memory stores: the embedded default and the reference implementation of the storage
 * primitives (src/core/documents.ts). The lifecycle is decided in the core; this file only keeps
 * documents in a Map and checks their versions on commit.
 */
import { decodeCursor, newestFirst, pageLimit, pageOf } from '../../src/core/cursor.js';
import {
  DocumentIterationStore,
  DocumentStateStore,
  type DocumentKey,
  type DocumentKind,
  type DocumentStore,
  type DocumentValues,
  type DocumentWrite,
  type IterationHeader,
  isStale,
  type TaskRead,
  type WriteStagingHook,
  nextVersion,
  type Versioned,
} from '../../src/core/documents.js';
import { CloudDeferError } from '../../src/core/errors.js';
import { copyJson } from '../../src/core/json-copy.js';
import { createStaged, runWork } from '../../src/core/staged-writes.js';
import type { OutboxEntry, PayloadStore, StagedDefer, Stores, TaskPage, TaskQuery, TransactionHook } from '../../src/core/stores.js';

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

interface StoredDocument {
  value: unknown;
  version: number;
  expiresAt?: number;
}

/** `work()`'s result as a promise, or its throw as a rejection, without an async frame. */
function settled<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * The storage primitives as a Map per kind with a version check. Each call runs to completion
 * without awaiting in between, so a commit is atomic in Node's single thread. Documents are
 * copied in and out so callers can never change stored state by accident.
 */
class MemoryDocuments implements DocumentStore {
  readonly kind = 'memory';
  private readonly documents: { readonly [K in DocumentKind]: Map<string, StoredDocument> } = {
    task: new Map(),
    ref: new Map(),
    outbox: new Map(),
    iteration: new Map(),
    shard: new Map(),
  };

  constructor(private readonly now: () => number) {}

  private live(kind: DocumentKind, id: string): StoredDocument | undefined {
    const doc = this.documents[kind].get(id);
    if (doc?.expiresAt !== undefined && doc.expiresAt <= this.now()) {
      this.documents[kind].delete(id);
      return undefined;
    }
    return doc;
  }

  // read and commit are not async functions: they finish synchronously, and an async frame per
  // call (two per delivery each) was a measurable share of a delivery's allocations.
  read(keys: readonly DocumentKey[]): Promise<Array<Versioned<unknown> | undefined>> {
    return settled(() =>
      keys.map(({ kind, id }) => {
        const doc = this.live(kind, id);
        return doc && { value: copyJson(doc.value), version: doc.version };
      }),
    );
  }

  commit(writes: readonly DocumentWrite[]): Promise<boolean> {
    return settled(() => this.commitNow(writes));
  }

  private commitNow(writes: readonly DocumentWrite[]): boolean {
    for (const write of writes) if (isStale(write, this.live(write.kind, write.id))) return false;
    for (const write of writes) {
      const kind = this.documents[write.kind];
      if (write.value === null) kind.delete(write.id);
      else {
        const doc: StoredDocument = { value: copyJson(write.value), version: nextVersion(write) };
        if (write.expiresAt !== undefined) doc.expiresAt = write.expiresAt;
        kind.set(write.id, doc);
      }
    }
    return true;
  }

  private values<K extends DocumentKind>(kind: K): Array<DocumentValues[K]> {
    const now = this.now();
    const out: Array<DocumentValues[K]> = [];
    for (const doc of this.documents[kind].values()) {
      if (doc.expiresAt === undefined || doc.expiresAt > now) out.push(doc.value as DocumentValues[K]);
    }
    return out;
  }

  async listTasks(query: TaskQuery): Promise<TaskPage> {
    const matches = this.values('task').filter(
      (record) =>
        (!query.status || record.status === query.status) &&
        (!query.queue || record.queue === query.queue) &&
        (!query.taskName || record.taskName === query.taskName) &&
        (!query.reference || record.reference === query.reference) &&
        (!query.iterationId || record.iterationId === query.iterationId),
    );
    return listPage(matches, query);
  }

  async listOutbox(createdBefore: number, limit: number): Promise<OutboxEntry[]> {
    return this.values('outbox')
      .filter((entry) => entry.createdAt < createdBefore)
      .sort((a, b) => a.createdAt - b.createdAt)
      .slice(0, Math.max(limit, 0))
      .map((entry) => copyJson(entry));
  }

  async listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationHeader[]; nextCursor?: string }> {
    return listPage(this.values('iteration'), query);
  }

  /** Inspection aid for tests: a document as stored, expiry applied, with its version. */
  rawDocument(kind: DocumentKind, id: string): Versioned<unknown> | undefined {
    const doc = this.live(kind, id);
    return doc && { value: copyJson(doc.value), version: doc.version };
  }
}

/** Newest first with a cursor, as every listing of the contract pages. */
function listPage<T extends { createdAt: number; id: string }>(all: T[], query: { cursor?: string; limit?: number }): { records: T[]; nextCursor?: string } {
  const limit = pageLimit(query.limit);
  const after = query.cursor ? decodeCursor(query.cursor) : undefined;
  const sorted = all.filter((r) => !after || newestFirst(r, after) > 0).sort(newestFirst);
  return pageOf(
    sorted.slice(0, limit + 1).map((r) => copyJson(r)),
    limit,
  );
}

class MemoryStateStore extends DocumentStateStore {
  constructor(readonly documents: MemoryDocuments) {
    super(documents);
  }
}

class MemoryIterationStore extends DocumentIterationStore {}

/**
 * A unit of work over the memory stores. Defers given `{ transaction: tx }` are written and
 * enqueued only when `commit()` runs; `rollback()` drops them.
 */
export class MemoryTransaction {
  private readonly staged: Array<{ staged: StagedDefer; afterCommit: () => Promise<void> }> = [];
  private readonly decisions: Array<(read: TaskRead) => Promise<DocumentWrite[]>> = [];
  private state: 'open' | 'committed' | 'rolledBack' = 'open';

  constructor(
    private readonly stores: MemoryStores,
    private readonly documents: DocumentStore,
  ) {}

  /** @internal used by the memory TransactionHook: writes decided, and committed, at commit(). */
  addWrites(decide: (read: TaskRead) => Promise<DocumentWrite[]>): void {
    if (this.state !== 'open') throw new CloudDeferError('INVALID_STATE', `This transaction is already ${this.state}.`);
    this.decisions.push(decide);
  }

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
    const read: TaskRead = async (kind, id) => (await this.documents.read([{ kind, id }]))[0] as Versioned<never> | undefined;
    // A document changed since the decision makes that commit write nothing (its caller finds out).
    for (const decide of this.decisions) await this.documents.commit(await decide(read));
    for (const { staged, afterCommit } of this.staged) {
      // A reference held by an unfinished task makes that defer a no-op, as outside a transaction.
      if (await createStaged(this.stores, staged, now)) created.push(afterCommit);
    }
    // Enqueue after everything is written, like the real backends' hooks.
    for (const afterCommit of created) await afterCommit();
  }

  rollback(): void {
    if (this.state !== 'open') return;
    this.state = 'rolledBack';
    this.staged.length = 0;
    this.decisions.length = 0;
  }
}

class MemoryTransactionHook implements TransactionHook<MemoryTransaction>, WriteStagingHook<MemoryTransaction> {
  readonly name = 'memory';
  accepts(transaction: unknown): transaction is MemoryTransaction {
    return transaction instanceof MemoryTransaction;
  }
  async stage(transaction: MemoryTransaction, staged: StagedDefer, afterCommit: () => Promise<void>): Promise<void> {
    transaction.add(staged, afterCommit);
  }
  async stageWrites(transaction: MemoryTransaction, decide: (read: TaskRead) => Promise<DocumentWrite[]>): Promise<void> {
    transaction.addWrites(decide);
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
  const documents = new MemoryDocuments(now);
  const stores: MemoryStores = {
    kind: 'memory',
    payloads: new MemoryPayloadStore(now),
    state: new MemoryStateStore(documents),
    iterations: new MemoryIterationStore(documents),
    transactions: [new MemoryTransactionHook()],
    beginTransaction: () => new MemoryTransaction(stores, documents),
    transaction<T>(work: (tx: MemoryTransaction) => Promise<T>): Promise<T> {
      const tx = new MemoryTransaction(stores, documents);
      return runWork(
        tx,
        work,
        () => tx.commit(),
        () => tx.rollback(),
      );
    },
  };
  return stores;
}

export type { MemoryPayloadStore, MemoryStateStore, MemoryIterationStore };
