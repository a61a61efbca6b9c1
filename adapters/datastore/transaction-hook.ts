/**
 * Joins a defer to the user's Datastore transaction (`datastore.transaction()` of the stores'
 * own client, after or without `await tx.run()`).
 *
 * stage() reads the reference claim and its holder through the transaction (so two transactions
 * deferring with one reference conflict, and only one of them can commit), then stages, in the
 * same transaction, the record, the reference claim, the outbox entity and a large payload's head
 * and chunks: the defer commits or rolls back with the user's own writes. A reference held by
 * an unfinished task makes the defer write nothing and enqueue nothing, as outside a transaction.
 *
 * afterCommit is arranged by wrapping this transaction's own `commit` once (the first stage() on
 * it): the wrapper calls the client's commit and, once it has resolved with the service's answer,
 * runs each staged afterCommit exactly once, then resolves the user's promise (or calls their
 * callback) with the same response. It never runs them when the commit fails (the client then
 * rolls back by itself), and not after rollback(), when the client refuses the commit, or answers
 * it without sending anything (its `skipCommit`); the wrapper checks both. A failing afterCommit rejects
 * commit() as the other stores do; the transaction has committed, and the outbox entity lets the
 * sweeper enqueue the task later.
 */
import type { Transaction } from '@google-cloud/datastore';
import type { StagedDefer, TransactionHook } from '../../src/core/stores.js';
import { CloudDeferError } from '../../src/core/errors.js';
import type { AdapterContext } from './context.js';
import { outboxWrite } from './outbox.js';
import { payloadWrites } from './payload-store.js';
import { holds, recordWrite, referenceHolder, referenceWrite } from './records.js';

/** A transaction's commit stays under Datastore's 10 MiB request limit with room for the user's writes. */
const MAX_TRANSACTIONAL_PAYLOAD = 9 * 1024 * 1024;

type CommitCallback = (error: Error | null, response?: unknown) => void;
type CommitFunction = (...args: unknown[]) => Promise<unknown[]> | void;

interface TransactionState {
  afterCommits: Array<() => Promise<void>>;
  commitStarted: boolean;
}

/** The client's Transaction fields the hook relies on (public in its typings). */
interface TransactionShape {
  datastore?: unknown;
  readOnly?: unknown;
  skipCommit?: unknown;
  commit?: unknown;
  modifiedEntities_?: unknown;
}

export class DatastoreTransactionHook implements TransactionHook<Transaction> {
  readonly name = 'datastore';
  private readonly transactions = new WeakMap<object, TransactionState>();

  constructor(private readonly ctx: AdapterContext) {}

  /** A transaction made by this stores' own client (so by the same project and credentials). */
  accepts(transaction: unknown): transaction is Transaction {
    if (typeof transaction !== 'object' || transaction === null) return false;
    const shape = transaction as TransactionShape;
    return shape.datastore === this.ctx.datastore && typeof shape.commit === 'function' && Array.isArray(shape.modifiedEntities_);
  }

  async stage(tx: Transaction, staged: StagedDefer, afterCommit: () => Promise<void>): Promise<void> {
    if (tx.readOnly) throw new CloudDeferError('INVALID_OPTION', 'defer() cannot join a read-only Datastore transaction: it writes the task record.');
    if (staged.payload && staged.payload.data.byteLength > MAX_TRANSACTIONAL_PAYLOAD) {
      throw new CloudDeferError(
        'PAYLOAD_TOO_LARGE',
        `A transactional defer's arguments (${staged.payload.data.byteLength} bytes) must fit in one Datastore commit (10 MiB with the rest of the transaction); defer outside the transaction or pass a smaller argument.`,
      );
    }
    const state = this.stateOf(tx);
    const refuseIfCommitted = (): void => {
      if (state.commitStarted || (tx as TransactionShape).skipCommit === true) {
        throw new CloudDeferError(
          'INVALID_STATE',
          'This Datastore transaction has already been committed or rolled back; start a new one to defer in a transaction.',
        );
      }
    };
    refuseIfCommitted();
    const { record, outbox, payload } = staged;
    if (record.reference !== undefined) {
      // Unguarded: an ABORTED read dooms the user's transaction, and they retry on that code.
      const holder = await referenceHolder(this.ctx, tx, record.reference);
      refuseIfCommitted(); // commit() may have been called while we read
      if (holds(holder, record.createdAt)) return;
      tx.upsert(referenceWrite(this.ctx, { ...record, reference: record.reference }));
    }
    // Insert: a record under this fresh id already there fails the commit rather than being overwritten.
    tx.insert(recordWrite(this.ctx, record));
    tx.upsert(outboxWrite(this.ctx, outbox));
    if (payload && payload.ttlMs > 0) tx.upsert(payloadWrites(this.ctx, payload.id, payload.data, this.ctx.now() + payload.ttlMs));
    state.afterCommits.push(afterCommit);
  }

  private stateOf(tx: Transaction): TransactionState {
    let state = this.transactions.get(tx);
    if (!state) {
      state = { afterCommits: [], commitStarted: false };
      this.transactions.set(tx, state);
      this.wrapCommit(tx, state);
    }
    return state;
  }

  private wrapCommit(tx: Transaction, state: TransactionState): void {
    const target = tx as unknown as { commit: CommitFunction };
    const originalCommit = target.commit;
    target.commit = function commitThenAfterCommit(this: unknown, ...args: unknown[]) {
      const callback = typeof args[args.length - 1] === 'function' ? (args.pop() as CommitCallback) : undefined;
      if (state.commitStarted) return originalCommit.apply(this, callback ? [...args, callback] : args);
      state.commitStarted = true;
      // With skipCommit set (after a rollback) the client calls back at once, sending nothing.
      const skipped = (tx as TransactionShape).skipCommit === true;
      const done = (originalCommit.apply(this, args) as Promise<unknown[]>).then(async (results) => {
        const response = results?.[0];
        if (!skipped && response !== undefined) await runAll(state.afterCommits);
        return results;
      });
      if (!callback) return done;
      done.then(
        (results) => callback(null, results?.[0]),
        (error: Error) => callback(error),
      );
      return undefined;
    };
  }
}

async function runAll(work: ReadonlyArray<() => Promise<void>>): Promise<void> {
  const failures: unknown[] = [];
  for (const run of work) {
    try {
      await run();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, 'Several deferred enqueues failed after the Datastore transaction committed.');
}
