/**
 * The storage primitives (src/core/documents.ts) on Datastore: one entity per document (layout in
 * kinds.ts), its version in `v`. commit() is one transaction, begun explicitly, that looks up
 * every written key, compares versions and saves or deletes all or nothing. A transaction that
 * loses (ABORTED: contention, or "Transaction lock timeout" where reads lock) is a lost round:
 * commit answers false, the core decides again on fresh reads, and the next round's transaction
 * names the lost one as previous_transaction, which pessimistic databases use for its priority.
 */
import { createHash } from 'node:crypto';
import type { Key } from '@google-cloud/datastore';
import { decodeCursor, encodeCursor, pageLimit } from '../../src/core/cursor.js';
import type { DocumentKey, DocumentStore, DocumentWrite, IterationHeader, Versioned } from '../../src/core/documents.js';
import { isStale, nextVersion } from '../../src/core/documents.js';
import type { TaskRecord } from '../../src/core/records.js';
import type { OutboxEntry, TaskPage, TaskQuery } from '../../src/core/stores.js';
import { CloudDeferError } from '../../src/core/errors.js';
import { keyString, where, type AdapterContext, type EntityData, type EntityWrite } from './context.js';
import { isAborted } from './errors.js';
import { listTasks } from './listing.js';
import { listingKeys, sortKey } from './listing-keys.js';

/** Datastore's entity limit is 1,048,572 bytes; leave room for the key and the listing keys. */
const MAX_VALUE_BYTES = 1_000_000;
/** Lost transactions remembered for previous_transaction; older ones are forgotten. */
const REMEMBERED = 1000;
/**
 * After an ABORTED round, wait a random time within a window that starts at what the lost round
 * took (at least 25 ms) and doubles per loss of the same document, at most 1 s or 4x the round.
 * Where reads lock (Datastore mode) contenders that lost together lost after the lock wait (2 s
 * on Google's emulator) and would otherwise all meet again; optimistic losses are fast and wait
 * little.
 */
const BACKOFF_MS = 25;
const MAX_BACKOFF_MS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

export class DatastoreDocuments implements DocumentStore {
  readonly kind = 'datastore';
  private readonly lost = new Map<string, { id?: string; losses: number }>();

  constructor(readonly ctx: AdapterContext) {}

  key({ kind, id }: DocumentKey): Key {
    const { kinds } = this.ctx;
    if (kind === 'shard') {
      // A child of its iteration: one entity group, so starting an iteration stays one group.
      const cut = id.lastIndexOf('/');
      return this.ctx.childKey(this.ctx.key(kinds.iteration, id.slice(0, cut)), kinds.iterationShard, Number(id.slice(cut + 1)) + 1);
    }
    // References can be 500 characters of any script; a hash always makes a valid key name.
    if (kind === 'ref') return this.ctx.key(kinds.reference, sha256(id));
    return this.ctx.key({ task: kinds.task, outbox: kinds.outbox, iteration: kinds.iteration }[kind], id);
  }

  /** A stored entity as a document; past its expiresAt it is absent (Datastore has no TTL: sweep.ts removes it). */
  decode(entity: EntityData | undefined): Versioned<unknown> | undefined {
    if (!entity || (entity.expiresAt != null && Number(entity.expiresAt) <= this.ctx.now())) return undefined;
    return { value: JSON.parse(String(entity.value)), version: Number(entity.v) };
  }

  /**
   * The entity a write saves: the document as JSON in `value` (unindexed), its version `v`, and
   * the indexed properties queries need: expiresAt (the sweep), a task's listing keys, the
   * outbox's createdAt and the iteration's lAll. Nothing else is indexed.
   */
  entity(write: DocumentWrite & { value: object }): EntityWrite {
    const value = JSON.stringify(write.value);
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES) {
      throw new CloudDeferError(
        'INVALID_OPTION',
        `The ${write.kind} document ${write.id} is ${Buffer.byteLength(value)} bytes, more than a Datastore entity holds; lower inlineLimitBytes (at most about 900 KiB with Datastore stores) so that large arguments go to the PayloadStore.`,
      );
    }
    const indexed =
      write.kind === 'task'
        ? listingKeys(write.value as TaskRecord)
        : write.kind === 'outbox'
          ? { createdAt: (write.value as OutboxEntry).createdAt }
          : write.kind === 'iteration'
            ? { lAll: sortKey(write.value as IterationHeader) }
            : {};
    const expiry = write.expiresAt !== undefined ? { expiresAt: write.expiresAt } : {};
    return { key: this.key(write), data: { value, v: nextVersion(write), ...expiry, ...indexed }, excludeFromIndexes: ['value', 'v'] };
  }

  async read(keys: readonly DocumentKey[]): Promise<Array<Versioned<unknown> | undefined>> {
    const wanted = keys.map((key) => this.key(key));
    return this.ctx.guard('read documents', async () => (await this.ctx.read(this.ctx.datastore, wanted)).map((entity) => this.decode(entity)));
  }

  async commit(writes: readonly DocumentWrite[]): Promise<boolean> {
    if (writes.length === 0) return true;
    const keys = writes.map((write) => this.key(write));
    const first = keyString(keys[0]!);
    const previous = this.lost.get(first);
    const tx = this.ctx.datastore.transaction();
    const started = Date.now();
    try {
      // Begun explicitly: Google's Datastore-mode emulator fails commits of lazily begun ones.
      await tx.run(previous?.id ? { transactionOptions: { id: previous.id } } : {});
      const current = await this.ctx.read(tx, keys);
      if (writes.some((write, i) => isStale(write, this.decode(current[i])))) {
        // Frees its locks at once on pessimistic databases.
        void tx.rollback().catch(() => undefined);
        return false;
      }
      writes.forEach((write, i) => (write.value === null ? tx.delete(keys[i]!) : tx.upsert(this.entity(write as DocumentWrite & { value: object }))));
      await tx.commit();
      this.lost.delete(first);
      return true;
    } catch (error) {
      void tx.rollback().catch(() => undefined);
      if (!isAborted(error)) throw this.ctx.storeError('commit documents', error);
      if (this.lost.size >= REMEMBERED) this.lost.clear();
      const losses = (previous?.losses ?? 0) + 1;
      this.lost.set(first, { ...(typeof tx.id === 'string' ? { id: tx.id } : {}), losses });
      const took = Date.now() - started;
      await sleep(Math.random() * Math.min(Math.max(MAX_BACKOFF_MS, 4 * took), Math.max(BACKOFF_MS, took) * 2 ** (losses - 1)));
      return false;
    }
  }

  listTasks(query: TaskQuery): Promise<TaskPage> {
    return this.ctx.guard('list task records', () => listTasks(this.ctx, query));
  }

  async listOutbox(createdBefore: number, limit: number): Promise<OutboxEntry[]> {
    if (limit <= 0) return [];
    return this.ctx.guard('list outbox entries', async () => {
      const q = where(this.ctx.query(this.ctx.kinds.outbox), 'createdAt', '<', createdBefore).order('createdAt').limit(limit);
      return (await this.ctx.runQuery(q)).map((entity) => this.decode(entity)!.value as OutboxEntry);
    });
  }

  listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationHeader[]; nextCursor?: string }> {
    const limit = pageLimit(query.limit);
    return this.ctx.guard('list iterations', async () => {
      const records: IterationHeader[] = [];
      let upper = query.cursor !== undefined ? sortKey(decodeCursor(query.cursor)) : undefined;
      for (;;) {
        const q = this.ctx
          .query(this.ctx.kinds.iteration)
          .order('lAll', { descending: true })
          .limit(limit + 1);
        if (upper !== undefined) where(q, 'lAll', '<', upper);
        const entities = await this.ctx.runQuery(q);
        for (const entity of entities) {
          upper = String(entity.lAll);
          const doc = this.decode(entity);
          if (!doc) continue; // expired, waiting for the sweep
          if (records.length === limit) return { records, nextCursor: encodeCursor(records[limit - 1]!) };
          records.push(doc.value as IterationHeader);
        }
        if (entities.length <= limit) return { records };
      }
    });
  }
}
