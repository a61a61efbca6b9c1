/**
 * The storage primitives on Firestore for deferIteration's documents: an iteration header at
 * cloudDeferIterations/{id} and one document per shard at cloudDeferIterations/{id}/shards/{index},
 * so shards never contend. Each document keeps its version in `v`; commit is one transaction that
 * reads every written document, compares versions and writes all or nothing. The lifecycle
 * decisions are the core's (src/core/documents.ts).
 */
import type { DocumentData, DocumentReference, DocumentSnapshot } from '@google-cloud/firestore';
import type { DocumentKey, DocumentStore, DocumentWrite, IterationHeader, Versioned } from '../../src/core/documents.js';
import { CloudDeferError } from '../../src/core/errors.js';
import type { OutboxEntry, TaskPage } from '../../src/core/stores.js';
import { withoutUndefined } from './codec.js';
import { checkDocId } from './collections.js';
import type { AdapterContext } from './context.js';
import { isAborted } from './errors.js';
import { newestFirstPage } from './listing.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class FirestoreIterationDocuments implements DocumentStore {
  readonly kind = 'firestore';

  constructor(private readonly ctx: AdapterContext) {}

  private ref(key: DocumentKey): DocumentReference {
    const iterations = this.ctx.collection(this.ctx.names.iterations);
    if (key.kind === 'iteration') return iterations.doc(checkDocId(key.id, 'Iteration id'));
    if (key.kind === 'shard') {
      const cut = key.id.lastIndexOf('/');
      return iterations
        .doc(checkDocId(key.id.slice(0, cut), 'Iteration id'))
        .collection('shards')
        .doc(key.id.slice(cut + 1));
    }
    throw new CloudDeferError('INVALID_OPTION', `The Firestore iteration documents do not keep "${key.kind}" documents.`);
  }

  private decode(snapshot: DocumentSnapshot): Versioned<unknown> | undefined {
    if (!this.ctx.isLive(snapshot)) return undefined;
    const { v, expireAt: _expireAt, ...value } = snapshot.data() as DocumentData;
    return { value, version: v as number };
  }

  read(keys: readonly DocumentKey[]): Promise<Array<Versioned<unknown> | undefined>> {
    if (keys.length === 0) return Promise.resolve([]);
    return this.ctx.guard('read iteration documents', async () => {
      const snapshots = await this.ctx.firestore.getAll(...keys.map((key) => this.ref(key)));
      return snapshots.map((snapshot) => this.decode(snapshot));
    });
  }

  async commit(writes: readonly DocumentWrite[]): Promise<boolean> {
    const refs = writes.map((write) => this.ref(write));
    try {
      return await this.ctx.transact('write iteration documents', async (tx) => {
        const current = await tx.getAll(...refs);
        for (const [i, write] of writes.entries()) {
          const doc = this.decode(current[i]!);
          if (write.expect === 'absent' ? doc !== undefined : doc?.version !== write.expect) return false;
        }
        for (const [i, write] of writes.entries()) {
          if (write.value === null) tx.delete(refs[i]!);
          else {
            const v = write.expect === 'absent' ? 1 : write.expect + 1;
            const expiry = write.expiresAt !== undefined ? { expireAt: this.ctx.expireAt(write.expiresAt) } : {};
            tx.set(refs[i]!, { ...withoutUndefined(write.value as unknown as Record<string, unknown>), v, ...expiry });
          }
        }
        return true;
      });
    } catch (error) {
      // Contention the client's own retries did not get past: the core reads and decides again.
      if (isAborted(error) || isAborted((error as { cause?: unknown }).cause)) {
        await sleep(Math.random() * 50);
        return false;
      }
      throw error;
    }
  }

  listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationHeader[]; nextCursor?: string }> {
    return this.ctx.guard('list iterations', () =>
      newestFirstPage(
        this.ctx,
        this.ctx.collection(this.ctx.names.iterations),
        query,
        (snapshot) => this.decode(snapshot)?.value as IterationHeader | undefined,
      ),
    );
  }

  listTasks(): Promise<TaskPage> {
    return Promise.reject(new CloudDeferError('INVALID_STATE', 'Tasks are listed by the Firestore state store.'));
  }

  listOutbox(): Promise<OutboxEntry[]> {
    return Promise.reject(new CloudDeferError('INVALID_STATE', 'The outbox is listed by the Firestore state store.'));
  }
}
