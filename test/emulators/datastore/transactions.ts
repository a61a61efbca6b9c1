import { randomBytes } from 'node:crypto';
import { invalidTransaction, unimplemented } from './errors.js';
import { partitionId, pathId, type Partition } from './keys.js';
import { MAX_TRANSACTION_MS } from './limits.js';
import { qualifies } from './query-engine.js';
import type { QueryPlan } from './query-plan.js';
import type { EntityStore } from './store.js';
import type { Key, TransactionOptions } from './types.js';

interface KeyRef {
  partition: Partition;
  key: Key;
}

/** What one transaction has read, and from which snapshot. */
export class Transaction {
  readonly id = randomBytes(16);
  readonly startedAt = Date.now();
  /** Fixed by the first read, so every read in the transaction sees one consistent snapshot. */
  snapshot?: number;
  readonly readKeys = new Map<string, KeyRef>();
  readonly queries: Array<{ partition: Partition; plan: QueryPlan }> = [];

  constructor(
    readonly readOnly: boolean,
    /** The newest commit when the transaction began: blind writes conflict with later commits. */
    readonly beginVersion: number,
  ) {}

  /** The version the transaction reads at; the first read fixes it to the newest commit. */
  readVersion(currentVersion: number): number {
    this.snapshot ??= currentVersion;
    return this.snapshot;
  }

  recordKeyRead(partition: Partition, key: Key): void {
    if (this.readOnly) return;
    this.readKeys.set(refId(partition, key), { partition, key });
  }

  recordQuery(partition: Partition, plan: QueryPlan): void {
    if (!this.readOnly) this.queries.push({ partition, plan });
  }
}

export const refId = (partition: Partition, key: Key): string => partitionId(partition) + pathId(key.path ?? []);

export class TransactionRegistry {
  private readonly active = new Map<string, Transaction>();

  begin(options: TransactionOptions | undefined, currentVersion: number): Transaction {
    this.dropExpired();
    if (options?.readOnly?.readTime) throw unimplemented('Read-only transactions at a read_time are not supported by this emulator.');
    // No mode set means read-write, which is what the Node client sends for a plain transaction().
    const transaction = new Transaction(Boolean(options?.readOnly), currentVersion);
    this.active.set(transaction.id.toString('hex'), transaction);
    return transaction;
  }

  /** An open transaction; a committed, rolled back, expired or unknown one is INVALID_ARGUMENT. */
  find(id: Uint8Array): Transaction {
    this.dropExpired();
    const transaction = this.active.get(Buffer.from(id).toString('hex'));
    if (!transaction) throw invalidTransaction();
    return transaction;
  }

  close(transaction: Transaction): void {
    this.active.delete(transaction.id.toString('hex'));
  }

  isOpen(transaction: Transaction): boolean {
    return this.active.get(transaction.id.toString('hex')) === transaction;
  }

  /** Open read-write transactions other than `except` that have read (so hold a lock on) any of these keys. */
  readersOf(refIds: readonly string[], except?: Transaction): Transaction[] {
    this.dropExpired();
    return [...this.active.values()].filter((t) => t !== except && !t.readOnly && refIds.some((id) => t.readKeys.has(id)));
  }

  /** The oldest version an open transaction may still read or compare against. */
  oldestVisibleVersion(currentVersion: number): number {
    let oldest = currentVersion;
    for (const transaction of this.active.values()) {
      oldest = Math.min(oldest, transaction.snapshot ?? transaction.beginVersion, transaction.beginVersion);
    }
    return oldest;
  }

  clear(): void {
    this.active.clear();
  }

  private dropExpired(): void {
    const deadline = Date.now() - MAX_TRANSACTION_MS;
    for (const [id, transaction] of this.active) if (transaction.startedAt < deadline) this.active.delete(id);
  }
}

/**
 * Optimistic concurrency, first committer wins: a read-write transaction may commit only if
 * nothing it read (entities, or entities entering or leaving a query's result set) changed
 * after its snapshot, and no key it writes changed after it began reading (or began).
 */
export function hasConflict(transaction: Transaction, store: EntityStore, writes: KeyRef[]): boolean {
  const readAt = transaction.snapshot ?? transaction.beginVersion;
  for (const { partition, key } of transaction.readKeys.values()) {
    if (store.lastChange(partition, key) > readAt) return true;
  }
  for (const { partition, key } of writes) {
    if (store.lastChange(partition, key) > readAt) return true;
  }
  for (const { partition, plan } of transaction.queries) {
    for (const { before, after } of store.changesSince(partition, plan.kind, readAt)) {
      if ((before && qualifies(plan, before)) || (after && qualifies(plan, after))) return true;
    }
  }
  return false;
}
