import { status } from '@grpc/grpc-js';
import { aborted, invalidArgument, RpcError, unimplemented } from './errors.js';
import { isComplete, partitionId, pathId, resolvePartition, validateKey, type Partition } from './keys.js';
import { MAX_REQUEST_BYTES, prepareEntityForWrite } from './limits.js';
import type { EntityStore } from './store.js';
import { hasConflict, refId, type Transaction, type TransactionRegistry } from './transactions.js';
import type { CommitRequest, CommitResponse, Entity, Key, Mutation, MutationResult } from './types.js';
import { entityStorageSize, microsToTimestamp, timestampMicros } from './values.js';

type Operation = 'insert' | 'update' | 'upsert' | 'delete';

export interface PessimisticLocking {
  /** How long a transaction's commit waits for other readers of what it writes. */
  upgradeTimeoutMs: number;
  /** How long a write outside any transaction waits for the readers of what it writes. */
  outsideWaitMs: number;
}

const LOCK_POLL_MS = 10;

const lockTimeout = (): RpcError => new RpcError(status.ABORTED, 'Transaction lock timeout.');

interface PreparedMutation {
  operation: Operation;
  partition: Partition;
  key: Key;
  entity?: Entity;
  /** Top-level properties to write; others are kept from the stored entity. */
  maskedProperties?: string[];
  baseVersion?: bigint;
  baseUpdateMicros?: bigint;
  failOnConflict: boolean;
}

/** The state of a key as this commit sees it, its own earlier mutations included. */
interface Pending {
  partition: Partition;
  key: Key;
  entity: Entity | null;
  /** The stored entity's versions; undefined once this commit has written the key. */
  version?: number;
  createVersion?: number;
  written: boolean;
}

interface Outcome {
  pending: Pending;
  allocated: boolean;
  conflict: boolean;
}

export class Commits {
  /** Transactions whose commit waits for other readers' locks, and those that timed out with another. */
  private readonly upgrading = new Set<Transaction>();
  private readonly timedOut = new WeakSet<Transaction>();

  constructor(
    private readonly store: EntityStore,
    private readonly transactions: TransactionRegistry,
    private readonly entityGroupLimit?: number,
    private readonly locking?: PessimisticLocking,
  ) {}

  /**
   * Commit, first waiting (in pessimistic mode) for the locks that other transactions' reads
   * hold on the keys written, as Firestore in Datastore mode does: a transaction's commit waits
   * up to `upgradeTimeoutMs`, then fails with ABORTED "Transaction lock timeout." (two
   * transactions that read and then write one entity wait for each other, and both fail); a write outside any
   * transaction waits up to `outsideWaitMs`, then the readers lose their locks (their commit is
   * then INVALID_ARGUMENT) and it goes through.
   */
  async commitWaiting(request: CommitRequest): Promise<CommitResponse> {
    if (!this.locking) return this.commit(request);
    const own = request.transaction?.length ? this.transactions.find(request.transaction) : undefined;
    const ids = (request.mutations ?? [])
      .map((mutation) => prepareMutation(request, mutation))
      .filter((mutation) => isComplete(mutation.key))
      .map((mutation) => refId(mutation.partition, mutation.key));
    const deadline = Date.now() + (own ? this.locking.upgradeTimeoutMs : this.locking.outsideWaitMs);
    if (own) this.upgrading.add(own);
    try {
      for (;;) {
        if (own && this.timedOut.has(own)) {
          this.transactions.close(own);
          throw lockTimeout();
        }
        const holders = this.transactions.readersOf(ids, own);
        if (holders.length === 0) break;
        if (Date.now() >= deadline) {
          if (own) {
            // As Google's emulator: holders waiting to write what we read time out with us (both lose).
            for (const holder of holders) if (this.upgrading.has(holder)) this.timedOut.add(holder);
            this.transactions.close(own);
            throw lockTimeout();
          }
          for (const holder of holders) this.transactions.close(holder);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
        if (own && !this.transactions.isOpen(own)) throw invalidArgument('Transaction is invalid or closed.');
      }
    } finally {
      if (own) this.upgrading.delete(own);
    }
    return this.commit(request);
  }

  /** Entity groups are root keys: a transaction over more than the limit is refused, as legacy Datastore does. */
  private checkEntityGroups(transaction: Transaction, written: Array<{ partition: Partition; key: Key }>): void {
    if (this.entityGroupLimit === undefined) return;
    const groups = new Set<string>();
    for (const { partition, key } of [...transaction.readKeys.values(), ...written]) {
      groups.add(partitionId(partition) + pathId((key.path ?? []).slice(0, 1)));
    }
    if (groups.size > this.entityGroupLimit) {
      throw invalidArgument(`operating on too many entity groups in a single transaction (${groups.size}, limit ${this.entityGroupLimit}).`);
    }
  }

  commit(request: CommitRequest): CommitResponse {
    const transaction = this.transactionOf(request);
    try {
      const mutations = (request.mutations ?? []).map((mutation) => prepareMutation(request, mutation));
      if (transaction?.readOnly && mutations.length > 0) {
        throw invalidArgument('Cannot modify entities in a read-only transaction.');
      }
      checkRequestSize(mutations);
      if (!transaction) checkNoRepeatedKeys(mutations);
      const written = mutations.filter((m) => isComplete(m.key)).map((m) => ({ partition: m.partition, key: m.key }));
      if (transaction) this.checkEntityGroups(transaction, written);
      if (transaction && hasConflict(transaction, this.store, written)) throw aborted();
      return this.apply(mutations);
    } finally {
      if (transaction) this.transactions.close(transaction);
    }
  }

  private transactionOf(request: CommitRequest): Transaction | undefined {
    resolvePartition(request, undefined);
    if (request.transaction?.length) {
      if (request.mode === 'NON_TRANSACTIONAL') throw invalidArgument('A non-transactional commit cannot name a transaction.');
      return this.transactions.find(request.transaction);
    }
    if (request.singleUseTransaction) return this.transactions.begin(request.singleUseTransaction, this.store.currentVersion);
    if (request.mode === 'TRANSACTIONAL') throw invalidArgument('A transactional commit needs a transaction.');
    return undefined;
  }

  /** Works out every mutation first, so a failing one leaves nothing written. */
  private apply(mutations: PreparedMutation[]): CommitResponse {
    const pending = new Map<string, Pending>();
    const outcomes = mutations.map((mutation) => this.applyOne(mutation, pending));
    const version = this.store.nextCommitVersion();
    const oldest = this.transactions.oldestVisibleVersion(this.store.currentVersion);
    for (const state of pending.values()) {
      if (state.written) this.store.write(state.partition, state.key, state.entity, version, oldest);
    }
    return {
      mutationResults: outcomes.map((outcome) => mutationResult(outcome, version)),
      indexUpdates: 0,
      commitTime: microsToTimestamp(version),
    };
  }

  private applyOne(mutation: PreparedMutation, pending: Map<string, Pending>): Outcome {
    const allocated = !isComplete(mutation.key);
    const key = allocated ? this.store.allocateId(mutation.partition, mutation.key) : mutation.key;
    const identity = partitionId(mutation.partition) + pathId(key.path ?? []);
    const state = pending.get(identity) ?? this.storedState(mutation.partition, key);
    pending.set(identity, state);

    if (hasVersionConflict(mutation, state)) {
      if (mutation.failOnConflict) throw new RpcError(status.FAILED_PRECONDITION, 'The entity version does not match the base version.');
      return { pending: { ...state }, allocated, conflict: true };
    }
    const exists = state.entity !== null;
    if (mutation.operation === 'insert' && exists) throw new RpcError(status.ALREADY_EXISTS, `entity already exists: ${describe(key)}`);
    if (mutation.operation === 'update' && !exists) throw new RpcError(status.NOT_FOUND, `no entity to update: ${describe(key)}`);
    if (mutation.operation === 'delete') {
      if (exists) Object.assign(state, { entity: null, written: true, version: undefined, createVersion: undefined });
    } else {
      const entity = { key, properties: mergedProperties(mutation, state.entity) };
      const createVersion = exists ? state.createVersion : undefined;
      Object.assign(state, { entity, written: true, version: undefined, createVersion });
    }
    return { pending: { ...state }, allocated, conflict: false };
  }

  private storedState(partition: Partition, key: Key): Pending {
    const live = this.store.get(partition, key, this.store.currentVersion);
    return { partition, key, entity: live?.entity ?? null, version: live?.version, createVersion: live?.createVersion, written: false };
  }
}

function prepareMutation(request: CommitRequest, mutation: Mutation): PreparedMutation {
  const operation = (['insert', 'update', 'upsert', 'delete'] as const).find((op) => mutation[op]);
  if (!operation) throw invalidArgument('A mutation must insert, update, upsert or delete.');
  if (mutation.propertyTransforms?.length) throw unimplemented('Property transforms are not supported by this emulator.');
  const entity = operation === 'delete' ? undefined : mutation[operation];
  const givenKey = operation === 'delete' ? mutation.delete : entity?.key;
  const partition = resolvePartition(request, givenKey?.partitionId);
  const key = validateKey(givenKey, partition, {
    allowIncompleteLast: operation === 'insert' || operation === 'upsert',
    forWrite: true,
  });
  const maskedProperties = mutation.propertyMask?.paths;
  if (maskedProperties?.some((path) => path.includes('.'))) {
    throw unimplemented('Nested property mask paths are not supported by this emulator.');
  }
  if (mutation.conflictResolutionStrategy === 'FAIL' && mutation.baseVersion === undefined && !mutation.updateTime) {
    throw invalidArgument('A conflict resolution strategy needs a conflict detection strategy.');
  }
  return {
    operation,
    partition,
    key,
    entity: entity ? prepareEntityForWrite(entity, key, partition.namespaceId) : undefined,
    maskedProperties: operation === 'delete' ? undefined : maskedProperties,
    baseVersion: mutation.baseVersion !== undefined ? BigInt(mutation.baseVersion) : undefined,
    baseUpdateMicros: mutation.updateTime ? timestampMicros(mutation.updateTime) : undefined,
    failOnConflict: mutation.conflictResolutionStrategy === 'FAIL',
  };
}

function checkRequestSize(mutations: PreparedMutation[]): void {
  const bytes = mutations.reduce((sum, m) => sum + (m.entity ? entityStorageSize(m.entity, m.partition.namespaceId) : 0), 0);
  if (bytes > MAX_REQUEST_BYTES) throw invalidArgument(`The request is larger than ${MAX_REQUEST_BYTES} bytes.`);
}

function checkNoRepeatedKeys(mutations: PreparedMutation[]): void {
  const seen = new Set<string>();
  for (const { partition, key } of mutations) {
    if (!isComplete(key)) continue;
    const identity = partitionId(partition) + pathId(key.path ?? []);
    if (seen.has(identity)) {
      throw invalidArgument('A non-transactional commit may not contain multiple mutations affecting the same entity.');
    }
    seen.add(identity);
  }
}

/** base_version / update_time: the mutation applies only to the version it names (0 = absent). */
function hasVersionConflict(mutation: PreparedMutation, state: Pending): boolean {
  if (mutation.baseVersion === undefined && mutation.baseUpdateMicros === undefined) return false;
  if (state.written) return true; // Changed earlier in this very commit.
  const current = BigInt(state.entity ? (state.version ?? 0) : 0);
  if (mutation.baseVersion !== undefined) return current !== mutation.baseVersion;
  return current !== mutation.baseUpdateMicros;
}

function mergedProperties(mutation: PreparedMutation, stored: Entity | null): Entity['properties'] {
  const given = mutation.entity?.properties ?? {};
  if (!mutation.maskedProperties || !stored) return given;
  const merged = { ...(stored.properties ?? {}) };
  for (const name of mutation.maskedProperties) {
    if (name in given) merged[name] = given[name];
    else delete merged[name];
  }
  return merged;
}

function mutationResult({ pending, allocated, conflict }: Outcome, version: number): MutationResult {
  // Unchanged keys report the stored entity's version; everything this commit wrote, the commit's.
  const entityVersion = conflict && pending.entity && pending.version ? pending.version : version;
  const result: MutationResult = { version: String(entityVersion), conflictDetected: conflict };
  if (allocated) result.key = pending.key;
  if (pending.entity) {
    result.createTime = microsToTimestamp(pending.createVersion ?? version);
    result.updateTime = microsToTimestamp(entityVersion);
  }
  return result;
}

function describe(key: Key): string {
  return (key.path ?? []).map((e) => `${e.kind}:${e.id ?? JSON.stringify(e.name)}`).join('/');
}
