// The emulator's behaviour, one method per RPC, independent of gRPC: reads under a consistency
// selector (latest, read_time, or a transaction, whose reads lock and are remembered for the
// commit's validation), and writes. Each commit runs synchronously, so it is atomic as it is.
import { randomBytes } from 'node:crypto';
import { aggregatedDocuments, compileAggregations } from './aggregation.js';
import { type Micros, microsToWire, MonotonicClock, wireToMicros } from './clock.js';
import { applyAtomically } from './commit.js';
import { aborted, FirestoreError, invalidArgument, notFound, unimplemented } from './errors.js';
import { listCollectionIds, listDocuments } from './listings.js';
import { checkDatabase, parseDocumentName, parseParent } from './names.js';
import { checkPartitionable, partitionPage, splitPoints } from './partitions.js';
import { type CompiledQuery, compileQuery, executeQuery, queryCollectionPath } from './query.js';
import { DocumentStore, type StoredDocument } from './store.js';
import { resultFingerprint, type Transaction, TransactionRegistry } from './transactions.js';
import { valueToWire } from './values.js';
import { maskPaths, toWireDocument } from './wire-documents.js';
import { type DecodedWrite, decodeWrite } from './writes.js';
import type * as wire from './wire.js';

export interface EngineOptions {
  /** How long a transaction waits for a lock before it is ABORTED. Default 2 s, as Google's emulator 1.19.9. */
  readonly lockWaitTimeoutMs?: number;
  /** A transaction idle this long is closed (INVALID_ARGUMENT on its next use). Default 60 s, as Firestore. */
  readonly idleTimeoutMs?: number;
}

type ReadContext =
  | { readonly kind: 'latest' }
  | { readonly kind: 'at'; readonly readTime: Micros }
  | { readonly kind: 'transaction'; readonly transaction: Transaction };

interface ResolvedRead {
  readonly context: ReadContext;
  /** Set when the request started the transaction: its id goes back in the first response. */
  readonly started?: Transaction;
}

interface ReadResult<T> {
  readonly value: T;
  readonly readTime: Micros;
}

/** A query in a read-write transaction re-runs after locking its results until they hold still. */
const MAX_QUERY_LOCK_ROUNDS = 10;

function autoId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(20)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

export class FirestoreEngine {
  private readonly clock = new MonotonicClock();
  private readonly store = new DocumentStore();
  private readonly transactions: TransactionRegistry;

  constructor(options: EngineOptions = {}) {
    this.transactions = new TransactionRegistry({
      lockWaitTimeoutMs: options.lockWaitTimeoutMs ?? 2_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
    });
  }

  /** Forgets every document and transaction (pending lock waits fail with ABORTED). */
  reset(): void {
    this.transactions.clear();
    this.store.clear();
  }

  // ---- reads ----

  async batchGetDocuments(request: wire.BatchGetDocumentsRequest): Promise<wire.BatchGetDocumentsResponse[]> {
    const database = checkDatabase(request.database);
    const names = [...new Set(request.documents ?? [])].map((name) => parseDocumentName(name, database).name);
    const mask = maskPaths(request.mask);
    const { context, started } = this.resolveRead(database, request);
    const read = () => this.readDocuments(context, names);
    const { value: documents, readTime } = await this.abandonOnFailure(started, read);
    const time = microsToWire(readTime);
    const responses: wire.BatchGetDocumentsResponse[] = names.map((name, i) => {
      const document = documents[i];
      return document ? { found: toWireDocument(document, mask), readTime: time } : { missing: name, readTime: time };
    });
    if (started) {
      if (responses.length === 0) responses.push({ readTime: time });
      responses[0]!.transaction = started.id;
    }
    return responses;
  }

  async getDocument(request: wire.GetDocumentRequest): Promise<wire.WireDocument> {
    const { name, database } = parseDocumentName(request.name);
    const { context } = this.resolveRead(database, { transaction: request.transaction, readTime: request.readTime });
    const { value: documents } = await this.readDocuments(context, [name]);
    const document = documents[0];
    if (!document) throw notFound(`Document "${name}" not found.`);
    return toWireDocument(document, maskPaths(request.mask));
  }

  async runQuery(request: wire.RunQueryRequest): Promise<wire.RunQueryResponse[]> {
    if (request.explainOptions) throw unimplemented('Query explain is not implemented by this emulator.');
    const query = compileQuery(request.parent, request.structuredQuery);
    const { context, started } = this.resolveRead(query.database, request);
    const read = () => this.queryDocuments(context, query);
    const { value: documents, readTime } = await this.abandonOnFailure(started, read);
    const time = microsToWire(readTime);
    // The transaction id comes alone in the first message, as Firestore sends it.
    const responses: wire.RunQueryResponse[] = started ? [{ transaction: started.id }] : [];
    for (const document of documents) {
      responses.push({ document: toWireDocument(document, query.projection), readTime: time });
    }
    if (documents.length === 0) responses.push({ readTime: time });
    return responses;
  }

  async runAggregationQuery(request: wire.RunAggregationQueryRequest): Promise<wire.RunAggregationQueryResponse[]> {
    const aggregationQuery = request.structuredAggregationQuery;
    const query = compileQuery(request.parent, aggregationQuery?.structuredQuery);
    const aggregations = compileAggregations(aggregationQuery?.aggregations ?? []);
    const { context, started } = this.resolveRead(query.database, request);
    const read = () => this.queryDocuments(context, query);
    const { value: documents, readTime } = await this.abandonOnFailure(started, read);
    const aggregateFields: Record<string, wire.WireValue> = {};
    const aggregated = aggregatedDocuments(aggregationQuery?.aggregations ?? [], documents);
    for (const { alias, compute } of aggregations) aggregateFields[alias] = valueToWire(compute(aggregated));
    const response: wire.RunAggregationQueryResponse = {
      result: { aggregateFields },
      readTime: microsToWire(readTime),
    };
    if (started) response.transaction = started.id;
    return [response];
  }

  listDocuments(request: wire.ListDocumentsRequest): wire.ListDocumentsResponse {
    const { database } = parseParent(request.parent);
    // Inside a read-write transaction this reads the latest data, without locks.
    return listDocuments(this.store, this.snapshotTime(this.resolveRead(database, request).context), request);
  }

  listCollectionIds(request: wire.ListCollectionIdsRequest): wire.ListCollectionIdsResponse {
    const readTime = request.readTime ? wireToMicros(request.readTime, 'read_time') : this.clock.readTime();
    return listCollectionIds(this.store, readTime, request);
  }

  partitionQuery(request: wire.PartitionQueryRequest): wire.PartitionQueryResponse {
    const query = compileQuery(request.parent, request.structuredQuery);
    if (query.parentSegments.length > 0) throw invalidArgument('PartitionQuery needs the database root as parent.');
    checkPartitionable(query);
    const partitionCount = Number(request.partitionCount ?? 0);
    if (!Number.isInteger(partitionCount) || partitionCount <= 0) {
      throw invalidArgument('partition_count must be positive.');
    }
    const readTime = request.readTime ? wireToMicros(request.readTime, 'read_time') : this.clock.readTime();
    const points = splitPoints(query, this.store.documents(readTime), partitionCount);
    return partitionPage(points, request.pageToken, request.pageSize);
  }

  // ---- transactions ----

  beginTransaction(request: wire.BeginTransactionRequest): wire.BeginTransactionResponse {
    const database = checkDatabase(request.database);
    return { transaction: this.transactions.begin(database, request.options, () => this.clock.readTime()).id };
  }

  rollback(request: wire.RollbackRequest): void {
    const database = checkDatabase(request.database);
    if (!request.transaction?.length) throw invalidArgument('Rollback needs a transaction.');
    this.transactions.rollback(request.transaction, database);
  }

  // ---- writes ----

  async commit(request: wire.CommitRequest): Promise<wire.CommitResponse> {
    const database = checkDatabase(request.database);
    const writes = (request.writes ?? []).map((write) => decodeWrite(write, database));
    const transaction = request.transaction?.length ? this.transactions.active(request.transaction, database) : undefined;
    if (!transaction && writes.length > 0) {
      // As on Firestore (pessimistic concurrency): a write outside any transaction waits behind the
      // locks transactions took by reading, until they finish (or are closed for being idle).
      const outside = this.transactions.begin(database, undefined, () => this.clock.readTime());
      await this.transactions.lock(
        outside,
        writes.map((write) => write.name),
        'exclusive',
        false,
      );
      try {
        return applyAtomically(this.store, this.clock, writes);
      } finally {
        this.transactions.finish(outside, 'committed');
      }
    }
    if (transaction?.readOnly) {
      if (writes.length > 0) throw invalidArgument('Cannot modify documents in a read-only transaction.');
      this.transactions.finish(transaction, 'committed');
      return { writeResults: [], commitTime: microsToWire(this.clock.readTime()) };
    }
    // A commit waits for the other readers of what it writes; the wait is bounded (lock timeout).
    if (transaction)
      await this.transactions.lock(
        transaction,
        writes.map((write) => write.name),
        'exclusive',
      );
    if (transaction && !this.readsUnchanged(transaction)) {
      this.transactions.abort(transaction);
      throw aborted();
    }
    try {
      const response = applyAtomically(this.store, this.clock, writes);
      if (transaction) this.transactions.finish(transaction, 'committed');
      return response;
    } catch (error) {
      if (transaction) this.transactions.finish(transaction, 'rolledBack');
      throw error;
    }
  }

  batchWrite(request: wire.BatchWriteRequest): wire.BatchWriteResponse {
    const database = checkDatabase(request.database);
    const writes = (request.writes ?? []).map((write) => decodeWrite(write, database));
    if (new Set(writes.map((write) => write.name)).size !== writes.length) {
      throw invalidArgument('A BatchWrite request cannot write the same document more than once.');
    }
    const response: wire.BatchWriteResponse = { writeResults: [], status: [] };
    // Not atomic: each write stands alone, with its own status.
    for (const write of writes) {
      try {
        response.writeResults.push(applyAtomically(this.store, this.clock, [write]).writeResults[0]!);
        response.status.push({ code: 0, message: '' });
      } catch (error) {
        if (!(error instanceof FirestoreError)) throw error;
        response.writeResults.push({ transformResults: [] });
        response.status.push({ code: error.code, message: error.message });
      }
    }
    return response;
  }

  createDocument(request: wire.CreateDocumentRequest): wire.WireDocument {
    const { database } = parseParent(request.parent);
    const name = `${request.parent}/${request.collectionId ?? ''}/${request.documentId || autoId()}`;
    const write = decodeWrite(
      {
        operation: 'update',
        update: { ...request.document, name },
        currentDocument: { conditionType: 'exists', exists: false },
      },
      database,
    );
    return this.writeAndRead(write, request.mask);
  }

  updateDocument(request: wire.UpdateDocumentRequest): wire.WireDocument {
    const { database } = parseDocumentName(request.document?.name);
    const write = decodeWrite(
      {
        operation: 'update',
        update: request.document,
        updateMask: request.updateMask,
        currentDocument: request.currentDocument,
      },
      database,
    );
    return this.writeAndRead(write, request.mask);
  }

  deleteDocument(request: wire.DeleteDocumentRequest): void {
    const { database } = parseDocumentName(request.name);
    const write = decodeWrite({ operation: 'delete', delete: request.name, currentDocument: request.currentDocument }, database);
    applyAtomically(this.store, this.clock, [write]);
  }

  // ---- internals ----

  private resolveRead(database: string, request: wire.WireConsistency): ResolvedRead {
    if (request.newTransaction) {
      const started = this.transactions.begin(database, request.newTransaction, () => this.clock.readTime());
      return { context: { kind: 'transaction', transaction: started }, started };
    }
    if (request.transaction?.length) {
      return { context: { kind: 'transaction', transaction: this.transactions.active(request.transaction, database) } };
    }
    if (request.readTime) return { context: { kind: 'at', readTime: wireToMicros(request.readTime, 'read_time') } };
    return { context: { kind: 'latest' } };
  }

  /** A transaction this request started is rolled back if the request fails: nobody got its id. */
  private async abandonOnFailure<T>(started: Transaction | undefined, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (started) this.transactions.abort(started);
      throw error;
    }
  }

  private snapshotTime(context: ReadContext): Micros {
    if (context.kind === 'at') return context.readTime;
    const transactionReadTime = context.kind === 'transaction' ? context.transaction.readTime : undefined;
    if (transactionReadTime !== undefined) return transactionReadTime;
    return this.clock.readTime();
  }

  private isReadWrite(context: ReadContext): context is { kind: 'transaction'; transaction: Transaction } {
    return context.kind === 'transaction' && !context.transaction.readOnly;
  }

  private async readDocuments(context: ReadContext, names: readonly string[]): Promise<ReadResult<(StoredDocument | null)[]>> {
    if (this.isReadWrite(context)) {
      const transaction = context.transaction;
      await this.transactions.lock(transaction, names, 'shared');
      const documents = names.map((name) => this.store.get(name));
      names.forEach((name, i) => transaction.recordDocumentRead(name, documents[i]!));
      return { value: documents, readTime: this.clock.readTime() };
    }
    const readTime = this.snapshotTime(context);
    return { value: names.map((name) => this.store.get(name, readTime)), readTime };
  }

  private async queryDocuments(context: ReadContext, query: CompiledQuery): Promise<ReadResult<StoredDocument[]>> {
    if (!this.isReadWrite(context)) {
      const readTime = this.snapshotTime(context);
      return { value: executeQuery(query, this.store.documents(readTime, queryCollectionPath(query))), readTime };
    }
    const transaction = context.transaction;
    let results = executeQuery(query, this.store.documents(undefined, queryCollectionPath(query)));
    for (let round = 0; round < MAX_QUERY_LOCK_ROUNDS; round++) {
      await this.transactions.lock(
        transaction,
        results.map((document) => document.name),
        'shared',
      );
      const again = executeQuery(query, this.store.documents(undefined, queryCollectionPath(query)));
      if (resultFingerprint(again) === resultFingerprint(results)) {
        transaction.recordQueryRead(query, again);
        return { value: again, readTime: this.clock.readTime() };
      }
      results = again;
    }
    this.transactions.abort(transaction);
    throw aborted();
  }

  /** Optimistic validation at commit: every document and query result the transaction read is as it was. */
  private readsUnchanged(transaction: Transaction): boolean {
    for (const [name, updateTime] of transaction.documentReads) {
      if ((this.store.get(name)?.updateTime ?? null) !== updateTime) return false;
    }
    return transaction.queryReads.every(
      (read) => resultFingerprint(executeQuery(read.query, this.store.documents(undefined, queryCollectionPath(read.query)))) === read.fingerprint,
    );
  }

  private writeAndRead(write: DecodedWrite, mask: wire.WireDocumentMask | null | undefined): wire.WireDocument {
    applyAtomically(this.store, this.clock, [write]);
    const document = this.store.get(write.name)!;
    return toWireDocument(document, maskPaths(mask));
  }
}
