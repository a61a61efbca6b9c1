/**
 * Joins a defer to the user's transaction: `firestore.runTransaction(async (tx) => { ...;
 * await deferred.defer(task, args, { transaction: tx }); })`, with the stores' own client.
 *
 * The Node client runs the function again on contention (ABORTED), up to its maxAttempts, with
 * the SAME Transaction object: each attempt stages its defers again, and only the attempt that
 * commits may enqueue. So the hook keeps, per Transaction object, the defers of the current
 * attempt only, and hooks that object's commit() and rollback(), which the client calls exactly
 * once per attempt (runTransactionOnce: the function, then commit(); rollback() on any failure):
 *
 * - stage() does the reads now (Firestore wants every read before the first write): for a
 *   reference, the claim and its holder, through the transaction, so two transactions deferring
 *   with one reference conflict and only one commits. A held reference makes the defer a no-op,
 *   as outside a transaction. Nothing is written yet.
 * - commit() (the wrapper) adds the attempt's writes to the transaction: tx.create of the record
 *   (fails the commit if the id exists), tx.set of the claim, the outbox document and a large
 *   payload's documents; then lets the client commit; and only when that commit succeeded, runs
 *   the attempt's afterCommit (the enqueue) before resolving. A commit that fails runs nothing.
 * - rollback() (the wrapper) forgets the attempt's defers; the next attempt stages its own.
 *
 * Writing at commit rather than in stage() also lets the user's function read after a defer.
 * If the process dies between the commit and the enqueue, the outbox document written in the
 * transaction lets sweepOutbox() enqueue the task later (under the same deterministic name).
 * A failing afterCommit rejects runTransaction (as the other stores' hooks do) with an error the
 * client does not retry; the transaction has committed.
 *
 * Client internals relied on (Node client v8): runTransaction calls commit() and rollback()
 * on the Transaction instance once per attempt, and a read-only transaction has no `_writeBatch`.
 */
import type { Firestore, Transaction } from '@google-cloud/firestore';
import { CloudDeferError } from '../../src/core/errors.js';
import type { TaskRecord } from '../../src/core/records.js';
import type { StagedDefer, TransactionHook } from '../../src/core/stores.js';
import { liveRecord, recordToDocument } from './codec.js';
import type { AdapterContext } from './context.js';
import { MAX_COMMIT_BYTES, payloadWrites } from './payload-store.js';
import { outboxDocument } from './outbox.js';
import { claimDocument, claimHolderId, holds } from './references.js';

interface StagedWork {
  staged: StagedDefer;
  /** Set when this defer takes its reference. */
  claims: boolean;
  afterCommit: () => Promise<void>;
}

interface TransactionState {
  /** Bumped at every commit and rollback: a stage() that began in an earlier attempt is dropped. */
  attempt: number;
  work: StagedWork[];
  /** References taken by this attempt's defers: a second defer with one of them is a no-op. */
  references: Set<string>;
  committing: boolean;
  committed: boolean;
}

/** The client's Transaction as the hook sees it (see "internals relied on"). */
interface TransactionShape {
  _firestore?: unknown;
  _writeBatch?: unknown;
  commit?: unknown;
  rollback?: unknown;
  get?: unknown;
  create?: unknown;
  set?: unknown;
}

type Lifecycle = () => Promise<void>;

export class FirestoreTransactionHook implements TransactionHook<Transaction> {
  readonly name = 'firestore';
  private readonly states = new WeakMap<object, TransactionState>();

  constructor(private readonly ctx: AdapterContext) {}

  /** A read-write or read-only transaction of this stores' client (read-only ones are refused in stage()). */
  accepts(transaction: unknown): transaction is Transaction {
    if (typeof transaction !== 'object' || transaction === null) return false;
    const shape = transaction as TransactionShape;
    return (
      shape._firestore === (this.ctx.firestore as Firestore) &&
      typeof shape.commit === 'function' &&
      typeof shape.rollback === 'function' &&
      typeof shape.get === 'function' &&
      typeof shape.create === 'function'
    );
  }

  async stage(tx: Transaction, staged: StagedDefer, afterCommit: () => Promise<void>): Promise<void> {
    if ((tx as TransactionShape)._writeBatch === undefined) {
      throw new CloudDeferError('INVALID_OPTION', 'defer() cannot join a read-only Firestore transaction: it writes the task record.');
    }
    if (staged.payload && staged.payload.data.byteLength > MAX_COMMIT_BYTES) {
      throw new CloudDeferError(
        'PAYLOAD_TOO_LARGE',
        `A transactional defer's arguments (${staged.payload.data.byteLength} bytes) must fit in one Firestore commit (10 MiB with the rest of the transaction); defer outside the transaction or pass a smaller argument.`,
      );
    }
    const state = this.stateOf(tx);
    const attempt = state.attempt;
    const reference = staged.record.reference;
    let claims = false;
    if (reference !== undefined && !state.references.has(reference)) {
      const holder = await this.readHolder(tx, reference);
      claims = !holds(holder, staged.record.createdAt);
    }
    if (state.committed || state.committing || state.attempt !== attempt) {
      throw new CloudDeferError(
        'INVALID_STATE',
        'This Firestore transaction attempt has already committed or ended; defer inside the transaction function and await it.',
      );
    }
    if (reference !== undefined && !claims) return; // held (by another task, or by an earlier defer of this attempt)
    if (reference !== undefined) state.references.add(reference);
    state.work.push({ staged, claims, afterCommit });
  }

  /** The task holding `reference` now, read through the transaction (so a rival defer conflicts). */
  private async readHolder(tx: Transaction, reference: string): Promise<TaskRecord | undefined> {
    try {
      const claim = await tx.get(this.ctx.claim(reference));
      const holderId = claimHolderId(claim);
      return holderId === undefined ? undefined : liveRecord(this.ctx, await tx.get(this.ctx.task(holderId)));
    } catch (error) {
      if (error instanceof Error && /reads to be executed before all writes/.test(error.message)) {
        throw new CloudDeferError(
          'INVALID_STATE',
          "A defer with a reference reads the reference in the transaction, and Firestore wants every read before the first write: defer before the transaction's own writes.",
          { cause: error },
        );
      }
      throw error;
    }
  }

  private stateOf(tx: Transaction): TransactionState {
    let state = this.states.get(tx);
    if (!state) {
      state = { attempt: 0, work: [], references: new Set(), committing: false, committed: false };
      this.states.set(tx, state);
      this.wrap(tx, state);
    }
    return state;
  }

  private wrap(tx: Transaction, state: TransactionState): void {
    const target = tx as unknown as { commit: Lifecycle; rollback: Lifecycle };
    const commit = target.commit;
    const rollback = target.rollback;
    const hook = this;
    const endAttempt = (): StagedWork[] => {
      const work = state.work;
      state.work = [];
      state.references = new Set();
      state.attempt += 1;
      return work;
    };
    target.commit = async function commitThenEnqueue(this: unknown): Promise<void> {
      const work = endAttempt();
      state.committing = true;
      try {
        for (const item of work) hook.write(tx, item);
        await commit.call(this);
      } finally {
        state.committing = false;
      }
      state.committed = true;
      await runAll(work.map((item) => item.afterCommit));
    };
    target.rollback = async function forgetThenRollback(this: unknown): Promise<void> {
      // After a failed commit too: the next attempt starts from nothing.
      if (!state.committed) endAttempt();
      return rollback.call(this);
    };
  }

  private write(tx: Transaction, { staged, claims }: StagedWork): void {
    const { record, outbox, payload } = staged;
    if (claims && record.reference !== undefined) tx.set(this.ctx.claim(record.reference), claimDocument(this.ctx, { ...record, reference: record.reference }));
    tx.create(this.ctx.task(record.id), recordToDocument(this.ctx, record));
    tx.set(this.ctx.collection(this.ctx.names.outbox).doc(outbox.taskId), outboxDocument(outbox));
    if (payload) for (const write of payloadWrites(this.ctx, payload.id, payload.data, this.ctx.now() + payload.ttlMs)) tx.set(write.ref, write.data);
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
  if (failures.length === 0) return;
  // A string code: the client must not take this for a retryable failure and run the function again.
  throw new CloudDeferError(
    'ENQUEUE_FAILED',
    `${failures.length} deferred enqueue(s) failed after the Firestore transaction committed; sweepOutbox() will retry them.`,
    {
      cause: failures.length === 1 ? failures[0] : new AggregateError(failures),
    },
  );
}
