/**
 * The storage primitives (src/core/documents.ts) on Firestore. Collections are `<prefix><Name>`
 * (default prefix "cloudDefer"); a document that expires carries `expireAt`, a timestamp for a
 * TTL policy (TTL deletes lazily, so reads treat a passed expireAt as gone):
 *
 *   cloudDeferTasks/{taskId}                   a TaskRecord's fields; its `version` is the version
 *   cloudDeferReferences/{sha256(reference)}   a ReferenceHold, version in `v`
 *   cloudDeferOutbox/{taskId}                  an OutboxEntry (request as JSON, body as bytes), `v`
 *   cloudDeferIterations/{id}                  an iteration header, `v`
 *     shards/{index}                           one shard's progress, `v` (shards never contend)
 *   cloudDeferPayloads/{id}                    payload-store.ts
 *
 * commit() is one write batch, not a transaction: each write carries a precondition, `exists:
 * false` for a document expected absent, else the `updateTime` that read() saw with the expected
 * version; Firestore applies a batch all or nothing and refuses it when a precondition fails. So a
 * commit takes no read lock (Firestore's transactions lock what they read, and everyone else waits
 * behind them) and costs one round trip after the core's read. A version read() has not seen
 * (another process's, or an evicted one) is read first.
 */
import { createHash } from 'node:crypto';
import type { DocumentData, DocumentReference, DocumentSnapshot, Firestore, Query, Timestamp } from '@google-cloud/firestore';
import { decodeCursor, pageLimit, pageOf } from '../../src/core/cursor.js';
import type { DocumentKey, DocumentKind, DocumentStore, DocumentWrite, IterationHeader, Versioned } from '../../src/core/documents.js';
import { nextVersion, prefixedNames } from '../../src/core/documents.js';
import { CloudDeferError, rethrownAs } from '../../src/core/errors.js';
import type { OutboxEntry, TaskPage, TaskQuery } from '../../src/core/stores.js';
import { GRPC, grpcCode, toStoreError } from './errors.js';
import type { FirestoreLibrary } from './library.js';

export interface CollectionNames {
  readonly tasks: string;
  readonly references: string;
  readonly payloads: string;
  readonly payloadChunks: string;
  readonly outbox: string;
  readonly iterations: string;
}

export function collectionNames(prefix: string): CollectionNames {
  if (!/^[A-Za-z0-9_-]*$/.test(prefix) || prefix.startsWith('__')) {
    throw new CloudDeferError('INVALID_OPTION', `collectionPrefix "${prefix}" must be letters, digits, "_" or "-", not starting with "__".`);
  }
  return prefixedNames(prefix, ['Tasks', 'References', 'Payloads', 'PayloadChunks', 'Outbox', 'Iterations']);
}

/** Task, payload and iteration ids become document ids as they are; refuse the few Firestore cannot hold. */
export function checkDocId(id: string, what: string): string {
  if (!id || id.includes('/') || id === '.' || id === '..' || /^__.*__$/.test(id) || Buffer.byteLength(id, 'utf8') > 1500) {
    throw new CloudDeferError(
      'INVALID_OPTION',
      `${what} "${id.slice(0, 80)}" cannot be a Firestore document id (no "/", not "." or "..", not __x__, at most 1500 bytes).`,
    );
  }
  return id;
}

/** JSON-like values without undefined anywhere (Firestore refuses undefined inside maps and arrays). */
function withoutUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map((item: unknown) => withoutUndefined(item)) as T;
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  return Object.fromEntries(Object.entries(value).flatMap(([key, item]) => (item === undefined ? [] : [[key, withoutUndefined(item)]]))) as T;
}

/** Commit failures that mean another writer got there first: the core reads and decides again. */
const CONFLICTS: ReadonlySet<number | undefined> = new Set([GRPC.FAILED_PRECONDITION, GRPC.ALREADY_EXISTS, GRPC.NOT_FOUND, GRPC.ABORTED]);
/** updateTimes remembered from reads, for the preconditions of the commits that follow them. */
const SEEN_LIMIT = 10_000;
/** A listing reads at least this many documents per round trip, so expired leftovers cost few reads. */
const MIN_BATCH = 50;

interface Seen {
  updateTime: Timestamp;
  fields: string[];
}

/** A stored document's version: a task record carries its own, every other kind the `v` field. */
function storedVersion(kind: DocumentKind, data: DocumentData): number {
  return (kind === 'task' ? data.version : data.v) as number;
}

export class FirestoreDocuments implements DocumentStore {
  readonly kind = 'firestore';
  private readonly seen = new Map<string, Seen>();

  constructor(
    readonly firestore: Firestore,
    readonly library: FirestoreLibrary,
    readonly names: CollectionNames,
    readonly now: () => number,
  ) {}

  ref({ kind, id }: DocumentKey): DocumentReference {
    const n = this.names;
    if (kind === 'ref') return this.firestore.collection(n.references).doc(createHash('sha256').update(id, 'utf8').digest('hex'));
    if (kind === 'shard') {
      const cut = id.lastIndexOf('/');
      return this.ref({ kind: 'iteration', id: id.slice(0, cut) })
        .collection('shards')
        .doc(id.slice(cut + 1));
    }
    const [collection, what] = kind === 'iteration' ? [n.iterations, 'Iteration id'] : [kind === 'task' ? n.tasks : n.outbox, 'Task id'];
    return this.firestore.collection(collection).doc(checkDocId(id, what));
  }

  /** True while a document's `expireAt` lies ahead. */
  isLive(snapshot: DocumentSnapshot): boolean {
    const expireAt = snapshot.exists ? (snapshot.get('expireAt') as Timestamp | undefined) : undefined;
    return snapshot.exists && (expireAt === undefined || expireAt.toMillis() > this.now());
  }

  /** Run a backend call; failures to reach Firestore become STORE_UNAVAILABLE. */
  guard<T>(action: string, work: () => Promise<T>): Promise<T> {
    return rethrownAs(work, (error) => {
      const emulator = process.env.FIRESTORE_EMULATOR_HOST;
      return toStoreError(`Firestore (database ${this.firestore.databaseId})${emulator ? ` via FIRESTORE_EMULATOR_HOST=${emulator}` : ''}`, action, error);
    });
  }

  /** The stored fields of a write (with its next version and expiry). */
  encode(write: DocumentWrite): DocumentData {
    const value = write.value as unknown as Record<string, unknown>;
    const expiry = write.expiresAt !== undefined ? { expireAt: this.library.Timestamp.fromMillis(write.expiresAt) } : {};
    if (write.kind === 'task') return { ...withoutUndefined(value), ...expiry };
    const v = nextVersion(write);
    if (write.kind !== 'outbox') return { ...withoutUndefined(value), v, ...expiry };
    const { bodyBase64, ...request } = (value as unknown as OutboxEntry).request;
    return { ...value, request: JSON.stringify(request), body: Buffer.from(bodyBase64, 'base64'), v, ...expiry };
  }

  /** A live document's value and version. */
  decode(kind: DocumentKind, snapshot: DocumentSnapshot): Versioned<unknown> | undefined {
    if (!this.isLive(snapshot)) return undefined;
    const data = snapshot.data()!;
    const { v: _v, expireAt: _expireAt, ...value } = data;
    const version = storedVersion(kind, data);
    if (kind === 'outbox') {
      const request = { ...JSON.parse(value.request as string), bodyBase64: Buffer.from(value.body as Uint8Array).toString('base64') };
      return { value: { taskId: value.taskId, createdAt: value.createdAt, request }, version };
    }
    return { value, version };
  }

  private remember(key: string, snapshot: DocumentSnapshot): void {
    if (this.seen.size >= SEEN_LIMIT) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(key, { updateTime: snapshot.updateTime!, fields: Object.keys(snapshot.data()!) });
  }

  read(keys: readonly DocumentKey[]): Promise<Array<Versioned<unknown> | undefined>> {
    if (keys.length === 0) return Promise.resolve([]);
    return this.guard('read documents', async () => {
      const snapshots = await this.firestore.getAll(...keys.map((key) => this.ref(key)));
      return snapshots.map((snapshot, i) => {
        const doc = this.decode(keys[i]!.kind, snapshot);
        const absent = `${snapshot.ref.path}@absent`;
        // An expired document still there is "absent" to the core; its replacement must name it.
        if (doc) this.remember(`${snapshot.ref.path}@${doc.version}`, snapshot);
        else if (snapshot.exists) {
          this.remember(absent, snapshot);
          // Expired: a commit expecting the version it had when live must read (and find it absent).
          this.seen.delete(`${snapshot.ref.path}@${storedVersion(keys[i]!.kind, snapshot.data()!)}`);
        } else this.seen.delete(absent);
        return doc;
      });
    });
  }

  async commit(writes: readonly DocumentWrite[]): Promise<boolean> {
    const refs = writes.map((write) => this.ref(write));
    const keyOf = (i: number) => `${refs[i]!.path}@${writes[i]!.expect}`;
    const unseen = writes.filter((write, i) => write.expect !== 'absent' && !this.seen.has(keyOf(i)));
    if (unseen.length > 0 && (await this.read(unseen)).some((doc, i) => doc?.version !== unseen[i]!.expect)) return false;
    const batch = this.firestore.batch();
    for (const [i, write] of writes.entries()) {
      const seen = this.seen.get(keyOf(i));
      this.seen.delete(keyOf(i));
      const guard = seen && { lastUpdateTime: seen.updateTime };
      if (write.value === null) {
        if (guard) batch.delete(refs[i]!, guard);
      } else if (!guard) batch.create(refs[i]!, this.encode(write));
      else {
        const data = this.encode(write);
        for (const field of seen.fields) if (!(field in data)) data[field] = this.library.FieldValue.delete();
        batch.update(refs[i]!, data, guard);
      }
    }
    try {
      await batch.commit();
      return true;
    } catch (error) {
      if (CONFLICTS.has(grpcCode(error))) return false;
      return this.guard('commit documents', () => Promise.reject(error));
    }
  }

  /** Newest first (createdAt, then document id, descending) from the cursor, skipping expired documents. */
  private async newestFirst<T extends { createdAt: number; id: string }>(kind: DocumentKind, query: Query, options: { cursor?: string; limit?: number }) {
    const limit = pageLimit(options.limit);
    let position = options.cursor ? decodeCursor(options.cursor) : undefined;
    const ordered = query.orderBy('createdAt', 'desc').orderBy(this.library.FieldPath.documentId(), 'desc');
    const found: T[] = [];
    // One more than the page: whether it exists says if there is a next page.
    while (found.length <= limit) {
      const batch = Math.max(limit + 1 - found.length, MIN_BATCH);
      const snapshot = await (position ? ordered.startAfter(position.createdAt, position.id) : ordered).limit(batch).get();
      for (const document of snapshot.docs) {
        position = { createdAt: document.get('createdAt') as number, id: document.id };
        const doc = this.decode(kind, document);
        if (doc && found.push(doc.value as T) > limit) break;
      }
      if (snapshot.size < batch) break;
    }
    return pageOf(found, limit);
  }

  /**
   * Each equality filter needs a composite index (field ASC, createdAt DESC, __name__ DESC);
   * Firestore merges them for several filters (docs/firestore.md).
   */
  listTasks(query: TaskQuery): Promise<TaskPage> {
    let filtered: Query = this.firestore.collection(this.names.tasks);
    for (const field of ['status', 'queue', 'taskName', 'reference', 'iterationId'] as const)
      if (query[field]) filtered = filtered.where(field, '==', query[field]);
    return this.guard('list task records', () => this.newestFirst('task', filtered, query));
  }

  listOutbox(createdBefore: number, limit: number): Promise<OutboxEntry[]> {
    if (limit <= 0) return Promise.resolve([]);
    return this.guard('list outbox entries', async () => {
      const outbox = this.firestore.collection(this.names.outbox).where('createdAt', '<', createdBefore);
      const snapshot = await outbox.orderBy('createdAt').orderBy(this.library.FieldPath.documentId()).limit(limit).get();
      return snapshot.docs.map((document) => this.decode('outbox', document)!.value as OutboxEntry);
    });
  }

  listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationHeader[]; nextCursor?: string }> {
    return this.guard('list iterations', () => this.newestFirst('iteration', this.firestore.collection(this.names.iterations), query));
  }
}
