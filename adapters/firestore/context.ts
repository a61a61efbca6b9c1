/**
 * What the stores of one firestoreStores() call share: the client and library, collection names,
 * the clock for expiry, error mapping, and the two ways the adapter makes a change atomic:
 *
 * - compareAndSet(): read documents, decide, write them in one batch whose writes carry a
 *   `lastUpdateTime` precondition (or `exists: false`); if another writer got there first the
 *   batch fails as a whole and the decision is made again on fresh reads. No locks are held, so
 *   the execution guard, settle and transitions never wait behind a slow transaction.
 * - transact(): firestore.runTransaction, for the few changes whose decision reads a document
 *   that is not written (a reference's holder), with more attempts than the client's default.
 */
import type { CollectionReference, DocumentReference, DocumentSnapshot, Firestore, Precondition, Transaction, WriteBatch } from '@google-cloud/firestore';
import type { CollectionNames } from './collections.js';
import { checkDocId, referenceDocId } from './collections.js';
import { GRPC, grpcCode, toStoreError } from './errors.js';
import type { FirestoreLibrary } from './library.js';

/** What a compare-and-set decided: its answer, and the writes that make it so (none: nothing to change). */
export interface CasDecision<T> {
  value: T;
  write?: (batch: WriteBatch) => void;
}

/** Commit failures that mean "someone else wrote first": decide again. */
const CONFLICTS: ReadonlySet<number> = new Set([GRPC.FAILED_PRECONDITION, GRPC.NOT_FOUND, GRPC.ALREADY_EXISTS, GRPC.ABORTED]);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The precondition that makes a write fail if the document changed since `snapshot` was read. */
export function unchangedSince(snapshot: DocumentSnapshot): Precondition {
  return snapshot.updateTime ? { lastUpdateTime: snapshot.updateTime } : { exists: false };
}

/** Milliseconds of a Timestamp read back from Firestore (or undefined when the field is missing). */
export function millisOf(value: unknown): number | undefined {
  return value && typeof (value as { toMillis?: unknown }).toMillis === 'function' ? (value as { toMillis(): number }).toMillis() : undefined;
}

export class AdapterContext {
  constructor(
    readonly firestore: Firestore,
    readonly library: FirestoreLibrary,
    readonly names: CollectionNames,
    readonly now: () => number,
    /** Attempts for a compare-and-set or transaction that keeps meeting other writers. */
    readonly maxAttempts: number,
  ) {}

  collection(name: string): CollectionReference {
    return this.firestore.collection(name);
  }

  task(id: string): DocumentReference {
    return this.firestore.collection(this.names.tasks).doc(checkDocId(id, 'Task id'));
  }

  claim(reference: string): DocumentReference {
    return this.firestore.collection(this.names.references).doc(referenceDocId(reference));
  }

  /** A TTL field value: the client stores a Date as a Firestore timestamp. */
  expireAt(ms: number): Date {
    return new Date(ms);
  }

  /** True while a document's `expireAt` lies ahead: TTL deletion is lazy, so reads must check. */
  isLive(snapshot: DocumentSnapshot): boolean {
    if (!snapshot.exists) return false;
    const expireAt = millisOf(snapshot.get('expireAt'));
    return expireAt === undefined || expireAt > this.now();
  }

  describe(): string {
    let project = '';
    try {
      project = ` (project ${(this.firestore as { projectId?: string }).projectId}, database ${this.firestore.databaseId})`;
    } catch {
      // The project is only known once the client has made its first call.
    }
    const emulator = process.env.FIRESTORE_EMULATOR_HOST;
    return `Firestore${project}${emulator ? ` via FIRESTORE_EMULATOR_HOST=${emulator}` : ''}`;
  }

  /** Run a backend call; failures to reach Firestore become STORE_UNAVAILABLE. */
  async guard<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw toStoreError(this.describe(), action, error);
    }
  }

  transact<T>(action: string, work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.guard(action, () => this.firestore.runTransaction(work, { maxAttempts: this.maxAttempts }));
  }

  /**
   * See the file comment. `read` fetches what the decision needs; `decide` must be a pure function
   * of it (both run again after a conflict).
   */
  compareAndSet<S, T>(action: string, read: () => Promise<S>, decide: (state: S) => CasDecision<T>): Promise<T> {
    return this.guard(action, async () => {
      for (let attempt = 1; ; attempt += 1) {
        const decision = decide(await read());
        if (!decision.write) return decision.value;
        const batch = this.firestore.batch();
        decision.write(batch);
        try {
          await batch.commit();
          return decision.value;
        } catch (error) {
          const code = grpcCode(error);
          if (code === undefined || !CONFLICTS.has(code) || attempt >= this.maxAttempts) throw error;
          // Jittered, growing pause: the writer that won has moved on by the next read.
          await sleep(Math.random() * Math.min(200, 2 ** attempt));
        }
      }
    });
  }
}
