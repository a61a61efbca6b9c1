// Transactions: ids, modes, what each read-write transaction read (documents with their versions,
// and queries with their results) so that a commit can check nothing it read has changed since,
// and the locks (locks.ts) that make writers wait for the transactions that read a document.
import { randomBytes } from 'node:crypto';
import { type Micros, wireToMicros } from './clock.js';
import { aborted, invalidArgument } from './errors.js';
import { LockManager, type LockMode, type LockOwner } from './locks.js';
import type { CompiledQuery } from './query.js';
import type { StoredDocument } from './store.js';
import type { WireTransactionOptions } from './wire.js';

export type TransactionState = 'active' | 'committed' | 'rolledBack' | 'aborted' | 'expired';

interface QueryRead {
  readonly query: CompiledQuery;
  readonly fingerprint: string;
}

/** Names and versions of a query's results: equal fingerprints mean the same results. */
export function resultFingerprint(documents: readonly StoredDocument[]): string {
  return documents.map((document) => `${document.name}@${document.updateTime}`).join('\n');
}

export class Transaction implements LockOwner {
  state: TransactionState = 'active';
  private lastUsedAt = Date.now();
  /** Each document read, with the update time it had then (null: it did not exist). */
  readonly documentReads = new Map<string, Micros | null>();
  readonly queryReads: QueryRead[] = [];

  constructor(
    readonly id: Buffer,
    readonly database: string,
    readonly readOnly: boolean,
    /** Read-only transactions read everything as of this time. */
    readonly readTime: Micros | undefined,
  ) {}

  isActive(): boolean {
    return this.state === 'active';
  }

  idleMs(): number {
    return Date.now() - this.lastUsedAt;
  }

  touch(): void {
    this.lastUsedAt = Date.now();
  }

  recordDocumentRead(name: string, document: StoredDocument | null): void {
    // The first read is the one the transaction's logic was based on.
    if (!this.documentReads.has(name)) this.documentReads.set(name, document?.updateTime ?? null);
  }

  recordQueryRead(query: CompiledQuery, results: readonly StoredDocument[]): void {
    this.queryReads.push({ query, fingerprint: resultFingerprint(results) });
    for (const document of results) this.recordDocumentRead(document.name, document);
  }
}

export interface TransactionOptions {
  readonly lockWaitTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

const INVALID_OR_CLOSED = 'Transaction is invalid or closed.';

/** Finished transactions are remembered (to answer reuse precisely) up to this many. */
const REMEMBERED_TRANSACTIONS = 10_000;

export class TransactionRegistry {
  private readonly transactions = new Map<string, Transaction>();
  private readonly locks: LockManager;

  constructor(private readonly options: TransactionOptions) {
    this.locks = new LockManager({
      waitTimeoutMs: options.lockWaitTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      abortOwner: (owner) => this.expire(owner as Transaction),
    });
  }

  begin(database: string, options: WireTransactionOptions | null | undefined, now: () => Micros): Transaction {
    const readOnly = options?.mode === 'readOnly';
    const retried = options?.readWrite?.retryTransaction;
    const previous = !readOnly && retried?.length ? this.transactions.get(retried.toString('hex')) : undefined;
    if (previous?.isActive()) this.finish(previous, 'rolledBack');
    const readTimeOption = options?.readOnly?.readTime;
    const readTime = readOnly ? (readTimeOption ? wireToMicros(readTimeOption, 'read_time') : now()) : undefined;
    const transaction = new Transaction(randomBytes(16), database, readOnly, readTime);
    this.transactions.set(transaction.id.toString('hex'), transaction);
    this.forgetOldTransactions();
    return transaction;
  }

  /** The transaction, if usable: ABORTED when it lost a conflict, INVALID_ARGUMENT when finished, idle too long or unknown. */
  active(id: Buffer, database: string): Transaction {
    const transaction = this.transactions.get(id.toString('hex'));
    if (!transaction || transaction.database !== database) {
      throw invalidArgument('The referenced transaction is unknown to this database.');
    }
    // As on Firestore: a transaction idle for a minute is closed.
    if (transaction.isActive() && transaction.idleMs() >= this.options.idleTimeoutMs) this.expire(transaction);
    if (transaction.state === 'expired') throw invalidArgument(INVALID_OR_CLOSED);
    if (transaction.state === 'aborted') throw aborted();
    if (transaction.state !== 'active') {
      const ending = transaction.state === 'committed' ? 'committed' : 'rolled back';
      throw invalidArgument(`The transaction is no longer active: it was already ${ending}.`);
    }
    transaction.touch();
    return transaction;
  }

  /**
   * Takes the locks on `names` in a fixed order: shared for a transaction's reads, exclusive for
   * writes. A transaction's waits are bounded (lockWaitTimeoutMs), a write outside one waits on.
   */
  async lock(transaction: Transaction, names: readonly string[], mode: LockMode, bounded = true): Promise<void> {
    try {
      for (const name of [...new Set(names)].sort()) await this.locks.acquire(transaction, name, mode, bounded);
    } catch (error) {
      this.abort(transaction);
      throw error;
    }
    if (!transaction.isActive()) throw aborted();
    transaction.touch();
  }

  finish(transaction: Transaction, state: 'committed' | 'rolledBack'): void {
    transaction.state = state;
    this.locks.releaseAll(transaction);
  }

  abort(transaction: Transaction): void {
    if (transaction.state !== 'active') return;
    transaction.state = 'aborted';
    this.locks.releaseAll(transaction);
  }

  private expire(transaction: Transaction): void {
    if (transaction.state !== 'active') return;
    transaction.state = 'expired';
    this.locks.releaseAll(transaction, () => invalidArgument(INVALID_OR_CLOSED));
  }

  rollback(id: Buffer, database: string): void {
    const transaction = this.transactions.get(id.toString('hex'));
    if (!transaction || transaction.database !== database) {
      throw invalidArgument('The referenced transaction is unknown to this database.');
    }
    if (transaction.state === 'committed') throw invalidArgument('The transaction was already committed.');
    if (transaction.state === 'active') this.finish(transaction, 'rolledBack');
  }

  clear(): void {
    for (const transaction of this.transactions.values()) if (transaction.isActive()) transaction.state = 'aborted';
    this.locks.clear();
    this.transactions.clear();
  }

  private forgetOldTransactions(): void {
    if (this.transactions.size <= REMEMBERED_TRANSACTIONS) return;
    for (const [key, transaction] of this.transactions) {
      if (this.transactions.size <= REMEMBERED_TRANSACTIONS / 2) break;
      if (!transaction.isActive()) this.transactions.delete(key);
    }
  }
}
