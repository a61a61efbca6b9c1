import * as grpc from '@grpc/grpc-js';
import { Commits, type PessimisticLocking } from './commits.js';
import { invalidArgument, RpcError } from './errors.js';
import { hasId, isComplete, resolvePartition, validateKey } from './keys.js';
import { Reads } from './reads.js';
import { EntityStore } from './store.js';
import { TransactionRegistry } from './transactions.js';
import type {
  BeginTransactionRequest,
  CommitRequest,
  Key,
  KeysRequest,
  LookupRequest,
  RollbackRequest,
  RunAggregationQueryRequest,
  RunQueryRequest,
} from './types.js';

/** The whole emulated service: state plus one method per RPC, free of any gRPC plumbing. */
export interface BackendOptions {
  /**
   * Most entity groups (root keys) one transaction may touch: 25 on databases in
   * OPTIMISTIC_WITH_ENTITY_GROUPS mode (legacy Datastore, Google's legacy emulator); none by
   * default, as in Datastore mode.
   */
  entityGroupLimit?: number;
  /** Lock waits as in Firestore's pessimistic Datastore mode; none (optimistic) by default. */
  locking?: PessimisticLocking;
}

export class DatastoreBackend {
  private readonly store = new EntityStore();
  private readonly transactions = new TransactionRegistry();
  readonly reads = new Reads(this.store, this.transactions);
  readonly commits: Commits;

  constructor(options: BackendOptions = {}) {
    this.commits = new Commits(this.store, this.transactions, options.entityGroupLimit, options.locking);
  }

  beginTransaction(request: BeginTransactionRequest) {
    resolvePartition(request, undefined);
    const transaction = this.transactions.begin(request.transactionOptions, this.store.currentVersion);
    return { transaction: transaction.id };
  }

  rollback(request: RollbackRequest) {
    resolvePartition(request, undefined);
    if (!request.transaction?.length) throw invalidArgument('A rollback needs a transaction.');
    this.transactions.close(this.transactions.find(request.transaction));
    return {};
  }

  allocateIds(request: KeysRequest) {
    const keys = (request.keys ?? []).map((key) => {
      const partition = resolvePartition(request, key.partitionId);
      const checked = validateKey(key, partition, { allowIncompleteLast: true, forWrite: true });
      if (isComplete(checked)) throw invalidArgument('AllocateIds needs keys whose last element is incomplete.');
      return this.store.allocateId(partition, checked);
    });
    return { keys };
  }

  /** Marks numeric ids as used so allocation never hands them out. */
  reserveIds(request: KeysRequest) {
    for (const key of request.keys ?? []) {
      const partition = resolvePartition(request, key.partitionId);
      const checked: Key = validateKey(key, partition, { allowIncompleteLast: false, forWrite: true });
      const last = checked.path?.[checked.path.length - 1];
      if (last && hasId(last) && last.id) this.store.reserveId(last.id);
    }
    return {};
  }

  /** Forgets every entity and open transaction; versions keep increasing. */
  reset(): void {
    this.store.clear();
    this.transactions.clear();
  }

  /** gRPC handlers for google.datastore.v1.Datastore. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      Lookup: unary<LookupRequest>((request) => this.reads.lookup(request)),
      RunQuery: unary<RunQueryRequest>((request) => this.reads.runQuery(request)),
      RunAggregationQuery: unary<RunAggregationQueryRequest>((request) => this.reads.runAggregationQuery(request)),
      BeginTransaction: unary<BeginTransactionRequest>((request) => this.beginTransaction(request)),
      Commit: unary<CommitRequest>((request) => this.commits.commitWaiting(request)),
      Rollback: unary<RollbackRequest>((request) => this.rollback(request)),
      AllocateIds: unary<KeysRequest>((request) => this.allocateIds(request)),
      ReserveIds: unary<KeysRequest>((request) => this.reserveIds(request)),
    };
  }
}

/** Requests arrive as proto-loader decoded them; types.ts describes that shape. */
function unary<Request>(run: (request: Request) => object | Promise<object>): grpc.handleUnaryCall<Request, object> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => run(call.request))
      .then(
        (reply) => callback(null, reply),
        (error) => callback(toServiceError(error)),
      );
  };
}

function toServiceError(error: unknown): Partial<grpc.StatusObject> {
  if (error instanceof RpcError) return { code: error.code, details: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: grpc.status.INTERNAL, details: `datastore emulator: ${message}` };
}
