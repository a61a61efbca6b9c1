/**
 * Transactional defer through the client's public Transaction methods only (get, create, set).
 * A defer with a reference reads the reference's hold and holder through the transaction (so two
 * transactions taking one reference conflict); record, hold, outbox document and a large payload
 * are written in the transaction. stores.transaction() (run()) adds those writes after `work`
 * and enqueues once runTransaction resolved. In the user's own runTransaction the writes join at
 * once, and since Transaction.commit is not public, a relay polls the outbox document (only a
 * committed transaction makes it exist) and enqueues when it reads it; sweep() is the backstop.
 * See docs/firestore.md for the latency this adds.
 */
import type { Transaction } from '@google-cloud/firestore';
import type { DocumentWrite, Versioned, WriteStagingHook } from '../../src/core/documents.js';
import { CloudDeferError } from '../../src/core/errors.js';
import { checkTransactionalPayload, runAfterCommits, type StagedRead, stagedWrites } from '../../src/core/staged-writes.js';
import type { StagedDefer, TransactionHook } from '../../src/core/stores.js';
import type { FirestoreDocuments } from './documents.js';
import { MAX_COMMIT_BYTES, payloadWrites } from './payload-store.js';

const RELAY_LIMIT_MS = 300_000;

/** One attempt of a stores.transaction() run: its defers wait here until `work` resolved. */
interface Attempt {
  staged: Array<{ apply: () => void; afterCommit: () => Promise<void> }>;
  references: Set<string>;
  open: boolean;
}

export class FirestoreTransactionHook implements TransactionHook<Transaction>, WriteStagingHook<Transaction> {
  readonly name = 'firestore';
  private readonly attempts = new WeakMap<Transaction, Attempt>();
  private readonly relays = new Set<NodeJS.Timeout>();

  constructor(private readonly docs: FirestoreDocuments) {}

  /** Any read-write or read-only Transaction of the client's library (read-only ones are refused in stage()). */
  accepts(transaction: unknown): transaction is Transaction {
    return transaction instanceof this.docs.library.Transaction;
  }

  async stage(tx: Transaction, staged: StagedDefer, afterCommit: () => Promise<void>): Promise<void> {
    checkTransactionalPayload(staged, MAX_COMMIT_BYTES, 'Firestore');
    const { record, outbox, payload } = staged;
    const attempt = this.attempts.get(tx);
    const reference = record.reference;
    if (attempt && !attempt.open) throw ended();
    if (attempt && reference !== undefined && attempt.references.has(reference)) return; // an earlier defer of this attempt holds it
    // Read through the transaction, so that a rival defer conflicts.
    const read: StagedRead = async (kind, id) => {
      try {
        return this.docs.decode(kind, await tx.get(this.docs.ref({ kind, id }))) as Versioned<never> | undefined;
      } catch (error) {
        throw clientRefusal(error);
      }
    };
    const writes = await stagedWrites(staged, this.docs.now(), read);
    if (attempt && (!attempt.open || this.attempts.get(tx) !== attempt)) throw ended();
    if (!writes) return; // held by an unfinished task: a no-op, as outside a transaction
    const apply = () => {
      tx.create(this.docs.ref(writes.task), this.docs.encode(writes.task));
      if (writes.hold) tx.set(this.docs.ref(writes.hold), this.docs.encode(writes.hold));
      tx.create(this.docs.ref(writes.outbox), this.docs.encode(writes.outbox));
      if (payload) for (const part of payloadWrites(this.docs, payload.id, payload.data, this.docs.now() + payload.ttlMs)) tx.set(part.ref, part.data);
    };
    if (attempt) {
      if (reference !== undefined) attempt.references.add(reference);
      attempt.staged.push({ apply, afterCommit });
      return;
    }
    try {
      apply();
    } catch (error) {
      throw clientRefusal(error);
    }
    this.relay(outbox.taskId, afterCommit);
  }

  /**
   * Reads through the transaction (so a rival writer of those documents conflicts) and writes
   * `decide`'s writes in it: at once in the user's own runTransaction, after `work` in
   * stores.transaction(). Firestore wants every read before the first write.
   */
  async stageWrites(tx: Transaction, decide: (read: StagedRead) => Promise<DocumentWrite[]>): Promise<void> {
    const attempt = this.attempts.get(tx);
    if (attempt && !attempt.open) throw ended();
    let writes: DocumentWrite[];
    try {
      writes = await decide(async (kind, id) => this.docs.decode(kind, await tx.get(this.docs.ref({ kind, id }))) as Versioned<never> | undefined);
    } catch (error) {
      if (error instanceof Error && /reads to be executed before all writes/.test(error.message)) {
        throw new CloudDeferError(
          'INVALID_STATE',
          "cloud-defer reads the task record in the transaction, and Firestore wants every read before the first write: call currentTask().recordSuccessIn(tx) before the transaction's own writes, or use stores.transaction().",
          { cause: error },
        );
      }
      throw clientRefusal(error);
    }
    if (attempt && (!attempt.open || this.attempts.get(tx) !== attempt)) throw ended();
    const apply = () => {
      for (const write of writes) {
        const ref = this.docs.ref(write);
        if (write.value === null) tx.delete(ref);
        else if (write.expect === 'absent') tx.create(ref, this.docs.encode(write));
        else tx.set(ref, this.docs.encode(write));
      }
    };
    if (attempt) attempt.staged.push({ apply, afterCommit: async () => {} });
    else apply();
  }

  /** stores.transaction(): see the file comment. */
  async run<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    let last: Attempt | undefined;
    try {
      const result = await this.docs.guard('run a transaction', () =>
        this.docs.firestore.runTransaction(async (tx) => {
          if (last) last.open = false;
          const attempt: Attempt = (last = { staged: [], references: new Set(), open: true });
          this.attempts.set(tx, attempt);
          const value = await work(tx);
          attempt.open = false;
          for (const { apply } of attempt.staged) apply();
          return value;
        }),
      );
      await runAll(last!.staged.map((s) => s.afterCommit));
      return result;
    } finally {
      if (last) last.open = false;
    }
  }

  /** Enqueue once the outbox document written by the user's transaction reads as committed. */
  private relay(taskId: string, afterCommit: () => Promise<void>): void {
    const started = Date.now();
    const ref = this.docs.ref({ kind: 'outbox', id: taskId });
    const poll = async (): Promise<void> => {
      const elapsed = Date.now() - started;
      if (elapsed > RELAY_LIMIT_MS) return;
      const committed = await ref.get().then(
        (snapshot) => snapshot.exists,
        () => false, // read again at the next poll
      );
      // A failed enqueue is the engine's to log and sweep()'s to retry.
      if (committed) return void (await afterCommit().catch(() => undefined));
      this.schedule(poll, Math.min(Math.max(elapsed / 2, 10), 2000));
    };
    this.schedule(poll, 10);
  }

  private schedule(poll: () => Promise<void>, ms: number): void {
    const timer = setTimeout(() => {
      this.relays.delete(timer);
      void poll();
    }, ms);
    // A pending relay does not keep the process alive: sweep() is the backstop.
    timer.unref();
    this.relays.add(timer);
  }

  /** Stops the relays (stores.close()). */
  stop(): void {
    for (const timer of this.relays) clearTimeout(timer);
    this.relays.clear();
  }
}

const ended = (cause?: unknown) =>
  new CloudDeferError('INVALID_STATE', 'This Firestore transaction attempt has already ended; defer inside the transaction function and await it.', { cause });

/** The client's refusals, as the errors defer() documents. */
function clientRefusal(error: unknown): unknown {
  const message = error instanceof Error ? error.message : '';
  if (/read-only/.test(message))
    return new CloudDeferError('INVALID_OPTION', 'defer() cannot join a read-only Firestore transaction: it writes the task record.', { cause: error });
  if (/reads to be executed before all writes/.test(message)) {
    return new CloudDeferError(
      'INVALID_STATE',
      "A defer with a reference reads the reference in the transaction, and Firestore wants every read before the first write: defer before the transaction's own writes (in firestore.runTransaction, also before other defers), or use stores.transaction().",
      { cause: error },
    );
  }
  if (/committed/.test(message)) return ended(error);
  return error;
}

async function runAll(work: ReadonlyArray<() => Promise<void>>): Promise<void> {
  const failures = await runAfterCommits(work);
  if (failures.length === 0) return;
  throw new CloudDeferError(
    'ENQUEUE_FAILED',
    `${failures.length} deferred enqueue(s) failed after the Firestore transaction committed; sweepOutbox() will retry them.`,
    {
      cause: failures.length === 1 ? failures[0] : new AggregateError(failures),
    },
  );
}
