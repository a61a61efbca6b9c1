import { encodeCursor } from './cursors.js';
import { invalidArgument, unimplemented } from './errors.js';
import { isReservedName, resolvePartition, validateKey, pathId } from './keys.js';
import { MAX_LOOKUP_KEYS } from './limits.js';
import { runPlan, type QueryRow } from './query-engine.js';
import { compileQuery, type QueryPlan } from './query-plan.js';
import type { EntityStore, LiveEntity } from './store.js';
import type { Transaction, TransactionRegistry } from './transactions.js';
import type {
  Aggregation,
  Entity,
  EntityResult,
  Query,
  LookupRequest,
  MoreResultsType,
  PropertyMask,
  QueryResultBatch,
  ReadOptions,
  RunAggregationQueryRequest,
  RunQueryRequest,
  Timestamp,
  Value,
} from './types.js';
import { microsToTimestamp, valueTypeOf } from './values.js';

/** The service sends results in batches; 300 is what it sends at most, 4 MiB keeps batches small. */
export const BATCH_MAX_RESULTS = 300;
const BATCH_MAX_BYTES = 4 * 1024 * 1024;

interface ReadContext {
  version: number;
  transaction?: Transaction;
  /** Set when the read began a transaction (`new_transaction`): returned to the client. */
  startedTransaction?: Buffer;
}

export class Reads {
  constructor(
    private readonly store: EntityStore,
    private readonly transactions: TransactionRegistry,
  ) {}

  lookup(request: LookupRequest) {
    const keys = request.keys ?? [];
    if (keys.length > MAX_LOOKUP_KEYS) throw invalidArgument(`A lookup may not ask for more than ${MAX_LOOKUP_KEYS} keys.`);
    const checked = keys.map((key) => {
      const partition = resolvePartition(request, key.partitionId);
      return { partition, key: validateKey(key, partition, { allowIncompleteLast: false, forWrite: false }) };
    });
    const read = this.openRead(request.readOptions);
    const found: EntityResult[] = [];
    const missing: EntityResult[] = [];
    const seen = new Set<string>();
    for (const { partition, key } of checked) {
      const identity = JSON.stringify(partition) + pathId(key.path ?? []);
      if (seen.has(identity)) continue;
      seen.add(identity);
      read.transaction?.recordKeyRead(partition, key);
      const live = this.store.get(partition, key, read.version);
      if (live) found.push(fullResult(live, request.propertyMask));
      else missing.push({ entity: { key }, version: String(read.version) });
    }
    return { found, missing, deferred: [], transaction: read.startedTransaction, readTime: readTime(read.version) };
  }

  runQuery(request: RunQueryRequest) {
    if (request.gqlQuery) throw unimplemented('GQL queries are not supported by this emulator.');
    const plan = compileQuery(request.query);
    const partition = resolvePartition(request, request.partitionId);
    const read = this.openRead(request.readOptions);
    read.transaction?.recordQuery(partition, plan);
    const { rows, cutByEnd } = runPlan(plan, this.store.entities(partition, plan.kind, read.version));
    return { batch: resultBatch(plan, rows, cutByEnd, read.version, request.propertyMask), transaction: read.startedTransaction };
  }

  runAggregationQuery(request: RunAggregationQueryRequest) {
    if (request.gqlQuery) throw unimplemented('GQL queries are not supported by this emulator.');
    const aggregations = request.aggregationQuery?.aggregations ?? [];
    if (aggregations.length < 1 || aggregations.length > 5) throw invalidArgument('An aggregation query needs one to five aggregations.');
    const plan = compileQuery(overAggregatedProperties(request.aggregationQuery?.nestedQuery, aggregations));
    const partition = resolvePartition(request, request.partitionId);
    const read = this.openRead(request.readOptions);
    read.transaction?.recordQuery(partition, plan);
    const { rows } = runPlan(plan, this.store.entities(partition, plan.kind, read.version));
    const afterOffset = rows.slice(plan.offset);
    const matched = plan.limit === undefined ? afterOffset : afterOffset.slice(0, plan.limit);
    return {
      batch: {
        aggregationResults: [{ aggregateProperties: aggregate(aggregations, matched) }],
        moreResults: 'NO_MORE_RESULTS' as MoreResultsType,
        readTime: readTime(read.version),
      },
      transaction: read.startedTransaction,
    };
  }

  /** Which snapshot a read sees: its transaction's, a new transaction's, or the newest commit. */
  private openRead(options: ReadOptions | undefined): ReadContext {
    const current = this.store.currentVersion;
    // The Node client may send both `transaction` and `new_transaction` when it pages a query in
    // a transaction it began lazily; the existing transaction is what it means.
    if (options?.transaction?.length) {
      const transaction = this.transactions.find(options.transaction);
      return { version: transaction.readVersion(current), transaction };
    }
    if (options?.newTransaction) {
      const transaction = this.transactions.begin(options.newTransaction, current);
      return { version: transaction.readVersion(current), transaction, startedTransaction: transaction.id };
    }
    if (options?.readTime) throw unimplemented('Reads at a read_time are not supported by this emulator.');
    return { version: current }; // Every read is strongly consistent, EVENTUAL included.
  }
}

const readTime = (version: number): Timestamp => microsToTimestamp(version);

function fullResult(live: LiveEntity, mask: PropertyMask | undefined): EntityResult {
  return {
    entity: masked(live.entity, mask),
    version: String(live.version),
    createTime: microsToTimestamp(live.createVersion),
    updateTime: microsToTimestamp(live.version),
  };
}

/** Keeps the masked properties; a dotted path keeps its whole top-level property. */
function masked(entity: Entity, mask: PropertyMask | undefined): Entity {
  const paths = mask?.paths ?? [];
  if (paths.length === 0) return entity;
  const tops = new Set(paths.map((path) => path.split('.')[0]));
  const properties = Object.fromEntries(Object.entries(entity.properties ?? {}).filter(([name]) => tops.has(name)));
  return { key: entity.key, properties };
}

function resultBatch(plan: QueryPlan, rows: QueryRow[], cutByEnd: boolean, version: number, mask: PropertyMask | undefined): QueryResultBatch {
  const skipped = Math.min(plan.offset, rows.length);
  const afterOffset = rows.slice(skipped);
  const limited = plan.limit === undefined ? afterOffset : afterOffset.slice(0, plan.limit);
  const returned = takeBatch(limited);
  const cursorAt = (row: QueryRow) => encodeCursor(plan.signature, row.position);
  const lastSkipped = skipped > 0 ? rows[skipped - 1] : undefined;
  const last = returned[returned.length - 1] ?? lastSkipped;
  return {
    skippedResults: skipped,
    skippedCursor: lastSkipped ? cursorAt(lastSkipped) : undefined,
    entityResultType: plan.keysOnly ? 'KEY_ONLY' : plan.projection.length > 0 ? 'PROJECTION' : 'FULL',
    entityResults: returned.map((row) => ({ ...rowResult(plan, row, mask), cursor: cursorAt(row) })),
    endCursor: last ? cursorAt(last) : encodeCursor(plan.signature, plan.start),
    moreResults: moreResults(plan, returned.length < limited.length, limited.length, cutByEnd),
    snapshotVersion: String(version),
    readTime: readTime(version),
  };
}

function moreResults(plan: QueryPlan, batchCut: boolean, limitedCount: number, cutByEnd: boolean): MoreResultsType {
  if (batchCut) return 'NOT_FINISHED';
  // Like the service, a query that reached its limit does not look further: "maybe more".
  if (plan.limit !== undefined && limitedCount === plan.limit) return 'MORE_RESULTS_AFTER_LIMIT';
  return cutByEnd ? 'MORE_RESULTS_AFTER_CURSOR' : 'NO_MORE_RESULTS';
}

function takeBatch(rows: QueryRow[]): QueryRow[] {
  let bytes = 0;
  let count = 0;
  while (count < rows.length && count < BATCH_MAX_RESULTS) {
    bytes += approximateBytes(rows[count].found.entity);
    if (count > 0 && bytes > BATCH_MAX_BYTES) break;
    count += 1;
  }
  return rows.slice(0, count);
}

function approximateBytes(entity: Entity): number {
  let size = 64;
  for (const value of Object.values(entity.properties ?? {})) {
    size += value.stringValue?.length ?? value.blobValue?.length ?? 16;
  }
  return size;
}

function rowResult(plan: QueryPlan, row: QueryRow, mask: PropertyMask | undefined): EntityResult {
  if (plan.keysOnly) return { entity: { key: row.found.entity.key } };
  if (plan.projection.length > 0) {
    // A distinct_on property that is not projected is not returned.
    const properties = Object.fromEntries(Object.entries(row.projected ?? {}).filter(([name]) => plan.projection.includes(name)));
    return { entity: { key: row.found.entity.key, properties } };
  }
  return fullResult(row.found, mask);
}

/**
 * SUM and AVG read the index of the property they add up, as Google's Datastore-mode emulator
 * does: the nested query runs as a projection on those properties, so an entity without one is
 * left out (of COUNT too), each distinct value of a list is a row, and a limit without an order keeps the
 * smallest values. `__key__` and other `__x__` properties are refused, as there.
 */
function overAggregatedProperties(query: Query | undefined, aggregations: Aggregation[]): Query | undefined {
  const names = aggregations.flatMap((aggregation) => {
    const field = aggregation.sum ?? aggregation.avg;
    return field ? [field.property?.name ?? ''] : [];
  });
  for (const name of names) {
    if (isReservedName(name)) throw invalidArgument(`Aggregations are not supported for the property: ${name}`);
  }
  if (!query || names.length === 0) return query;
  const projected = (query.projection ?? []).map((p) => p.property?.name ?? '');
  const added = [...new Set(names)].filter((name) => name && !projected.includes(name));
  return { ...query, projection: [...(query.projection ?? []), ...added.map((name) => ({ property: { name } }))] };
}

function aggregate(aggregations: Aggregation[], rows: QueryRow[]): Record<string, Value> {
  const results: Record<string, Value> = {};
  let unnamed = 0;
  for (const aggregation of aggregations) {
    const alias = aggregation.alias || `property_${++unnamed}`;
    if (aggregation.count) {
      const upTo = aggregation.count.upTo?.value;
      const count = upTo === undefined ? rows.length : Math.min(rows.length, Number(upTo));
      results[alias] = { integerValue: String(count) };
    } else if (aggregation.sum || aggregation.avg) {
      const property = (aggregation.sum ?? aggregation.avg)?.property?.name ?? '';
      results[alias] = aggregation.sum ? sum(rows, property) : average(rows, property);
    } else {
      throw invalidArgument('An aggregation must be count, sum or avg.');
    }
  }
  return results;
}

function numericValues(rows: QueryRow[], property: string): Value[] {
  return rows
    .map((row) => row.projected?.[property])
    .filter((value): value is Value => {
      const type = value && valueTypeOf(value);
      return type === 'integerValue' || type === 'doubleValue';
    });
}

const INT64_MAX = (1n << 63n) - 1n;

function sum(rows: QueryRow[], property: string): Value {
  const values = numericValues(rows, property);
  if (values.every((value) => valueTypeOf(value) === 'integerValue')) {
    const total = values.reduce((acc, value) => acc + BigInt(value.integerValue ?? '0'), 0n);
    if (total <= INT64_MAX && total >= -INT64_MAX - 1n) return { integerValue: total.toString() };
  }
  return { doubleValue: values.reduce((acc, value) => acc + numberOf(value), 0) };
}

function average(rows: QueryRow[], property: string): Value {
  const values = numericValues(rows, property);
  if (values.length === 0) return { nullValue: 'NULL_VALUE' };
  return { doubleValue: values.reduce((acc, value) => acc + numberOf(value), 0) / values.length };
}

const numberOf = (value: Value): number => (valueTypeOf(value) === 'integerValue' ? Number(value.integerValue) : (value.doubleValue ?? 0));
