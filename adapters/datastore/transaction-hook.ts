/**
 * Transactional defer on Datastore, through the client's public Transaction API only.
 *
 * stage() reads the reference hold and its holder through the transaction (so two transactions
 * deferring with one reference conflict, and at most one of them commits), lets the core's
 * lifecycle decide, and stages with the transaction's own save/insert: the record, the hold, the
 * outbox entity and a large payload's head and chunks commit or roll back with the user's writes.
 * A reference held by an unfinished task makes the defer write and enqueue nothing.
 *
 * The staged enqueues run after the commit. With `stores.transaction(work)` the runner commits
 * and then runs them. A transaction the user began and commits (`{ transaction: tx }`) gets its
 * instance's public `commit` and `rollback` methods wrapped once, on the first stage(): the
 * enqueues run once the service has accepted the commit, before the user's promise resolves (or
 * callback is called), never after a failed commit or a rollback. A failing enqueue rejects
 * commit(); the transaction has committed, and the outbox entity lets the sweeper enqueue later.
 */
import type { Transaction } from '@google-cloud/datastore';
import type { DocumentWrite, Versioned, WriteStagingHook } from '../../src/core/documents.js';
import { CloudDeferError } from '../../src/core/errors.js';
import { checkTransactionalPayload, notify, runAfterCommits, runWork, type StagedRead, stagedWrites, throwFailures } from '../../src/core/staged-writes.js';
import type { StagedDefer, TransactionHook } from '../../src/core/stores.js';
import type { DatastoreDocuments } from './documents.js';
import { payloadWrites } from './payload-store.js';

/** A transaction's commit stays under Datastore's 10 MiB request limit with room for the user's writes. */
const MAX_TRANSACTIONAL_PAYLOAD = 9 * 1024 * 1024;

type Callback = (error: Error | null, response?: unknown) => void;
type Method = (...args: unknown[]) => Promise<unknown[]> | undefined;

interface Staging {
  afterCommits: Array<() => Promise<void>>;
  closed: boolean;
}

export class DatastoreTransactionHook implements TransactionHook<Transaction>, WriteStagingHook<Transaction> {
  readonly name = 'datastore';
  private readonly staging = new WeakMap<Transaction, Staging>();

  constructor(private readonly docs: DatastoreDocuments) {}

  /** A transaction of this stores' own client (so of the same project and credentials). */
  accepts(transaction: unknown): transaction is Transaction {
    const { datastore } = this.docs.ctx;
    return transaction instanceof datastore.Transaction && transaction.datastore === datastore;
  }

  async stage(tx: Transaction, staged: StagedDefer, afterCommit: () => Promise<void>): Promise<void> {
    if (tx.readOnly) throw new CloudDeferError('INVALID_OPTION', 'defer() cannot join a read-only Datastore transaction: it writes the task record.');
    checkTransactionalPayload(staged, MAX_TRANSACTIONAL_PAYLOAD, 'Datastore');
    const state = this.staging.get(tx) ?? this.wrap(tx);
    const refuseIfClosed = (): void => {
      if (state.closed) {
        throw new CloudDeferError(
          'INVALID_STATE',
          'This Datastore transaction has already been committed or rolled back; start a new one to defer in a transaction.',
        );
      }
    };
    refuseIfClosed();
    // Unguarded reads: an ABORTED read dooms the user's transaction, and they retry on that code.
    // refuseIfClosed after them: commit() may have been called while we read.
    const read: StagedRead = async (kind, id) =>
      this.docs.decode((await this.docs.ctx.read(tx, [this.docs.key({ kind, id })]))[0]) as Versioned<never> | undefined;
    const writes = await stagedWrites(staged, staged.record.createdAt, read, refuseIfClosed);
    if (!writes) return;
    // Insert: a record under this fresh id already there fails the commit rather than being overwritten.
    tx.insert(this.docs.entity(writes.task as DocumentWrite & { value: object }));
    for (const write of [writes.hold, writes.outbox]) if (write) tx.upsert(this.docs.entity(write as DocumentWrite & { value: object }));
    const { payload } = staged;
    if (payload && payload.ttlMs > 0) tx.upsert(payloadWrites(this.docs.ctx, payload.id, payload.data, this.docs.ctx.now() + payload.ttlMs));
    state.afterCommits.push(afterCommit);
  }

  /** Reads through the transaction (a rival writer conflicts) and saves `decide`'s writes in it. */
  async stageWrites(tx: Transaction, decide: (read: StagedRead) => Promise<DocumentWrite[]>): Promise<void> {
    if (tx.readOnly)
      throw new CloudDeferError('INVALID_OPTION', "A read-only Datastore transaction cannot hold the task record's write; use a read-write one.");
    const state = this.staging.get(tx) ?? this.wrap(tx);
    const refuseIfClosed = (): void => {
      if (state.closed) throw new CloudDeferError('INVALID_STATE', 'This Datastore transaction has already been committed or rolled back; start a new one.');
    };
    refuseIfClosed();
    const writes = await decide(
      async (kind, id) => this.docs.decode((await this.docs.ctx.read(tx, [this.docs.key({ kind, id })]))[0]) as Versioned<never> | undefined,
    );
    refuseIfClosed();
    for (const write of writes) {
      if (write.value === null) tx.delete(this.docs.key(write));
      else if (write.expect === 'absent') tx.insert(this.docs.entity(write as DocumentWrite & { value: object }));
      else tx.upsert(this.docs.entity(write as DocumentWrite & { value: object }));
    }
  }

  /** A transaction the runner begins: it commits, then calls committed(). */
  own(tx: Transaction): void {
    this.staging.set(tx, { afterCommits: [], closed: false });
  }

  /** Runs the staged enqueues of a committed transaction, once. */
  async committed(tx: Transaction): Promise<void> {
    const state = this.staging.get(tx);
    if (!state) return;
    state.closed = true;
    throwFailures(await runAfterCommits(state.afterCommits.splice(0)), 'Datastore');
  }

  /** The user's own transaction: wrap this instance's commit and rollback, once. */
  private wrap(tx: Transaction): Staging {
    const state: Staging = { afterCommits: [], closed: false };
    this.staging.set(tx, state);
    const target = tx as unknown as { commit: Method; rollback: Method };
    const [commit, rollback] = [target.commit, target.rollback];
    target.rollback = function rollbackFirst(this: unknown, ...args: unknown[]) {
      state.closed = true;
      state.afterCommits.length = 0;
      return rollback.apply(this, args);
    };
    const hook = this;
    target.commit = function commitThenEnqueue(this: unknown, ...args: unknown[]) {
      const callback = typeof args[args.length - 1] === 'function' ? (args.pop() as Callback) : undefined;
      const wasClosed = state.closed;
      state.closed = true;
      const done = (commit.apply(this, args) as Promise<unknown[]>).then(async (results) => {
        if (!wasClosed) await hook.committed(tx);
        return results;
      });
      if (!callback) return done;
      const response = done.then((results) => results?.[0]);
      notify(response, callback);
      return undefined;
    };
    return state;
  }
}

/** stores.transaction(work): begin, run `work`, commit, then the staged enqueues; roll back when `work` throws. */
export async function runTransaction<T>(docs: DatastoreDocuments, hook: DatastoreTransactionHook, work: (tx: Transaction) => Promise<T>): Promise<T> {
  const tx = docs.ctx.datastore.transaction();
  await docs.ctx.guard('begin a transaction', () => tx.run());
  hook.own(tx);
  const commit = async () => {
    await tx.commit();
    await hook.committed(tx);
  };
  return runWork(tx, work, commit, () => tx.rollback().catch(() => undefined));
}
