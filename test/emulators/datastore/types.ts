// Shapes of google.datastore.v1 messages as @grpc/proto-loader hands them over with the options
// in protos.ts: camelCase fields, int64 as decimal strings, enums as names, bytes as Buffers,
// absent fields left undefined, and the name of the set member of each oneof in a virtual field.

export type ValueType =
  | 'nullValue'
  | 'booleanValue'
  | 'integerValue'
  | 'doubleValue'
  | 'timestampValue'
  | 'keyValue'
  | 'stringValue'
  | 'blobValue'
  | 'geoPointValue'
  | 'entityValue'
  | 'arrayValue';

export interface Timestamp {
  seconds?: string | number;
  nanos?: number;
}

export interface PartitionId {
  projectId?: string;
  databaseId?: string;
  namespaceId?: string;
}

export interface PathElement {
  kind?: string;
  id?: string;
  name?: string;
  idType?: 'id' | 'name';
}

export interface Key {
  partitionId?: PartitionId;
  path?: PathElement[];
}

export interface LatLng {
  latitude?: number;
  longitude?: number;
}

export interface Value {
  valueType?: ValueType;
  nullValue?: 'NULL_VALUE' | number;
  booleanValue?: boolean;
  integerValue?: string;
  doubleValue?: number;
  timestampValue?: Timestamp;
  keyValue?: Key;
  stringValue?: string;
  blobValue?: Uint8Array;
  geoPointValue?: LatLng;
  entityValue?: Entity;
  arrayValue?: { values?: Value[] };
  meaning?: number;
  excludeFromIndexes?: boolean;
}

export interface Entity {
  key?: Key;
  properties?: Record<string, Value>;
}

export interface EntityResult {
  entity: Entity;
  version?: string;
  createTime?: Timestamp;
  updateTime?: Timestamp;
  cursor?: Buffer;
}

export interface PropertyReference {
  name?: string;
}

export type PropertyOperator =
  | 'OPERATOR_UNSPECIFIED'
  | 'LESS_THAN'
  | 'LESS_THAN_OR_EQUAL'
  | 'GREATER_THAN'
  | 'GREATER_THAN_OR_EQUAL'
  | 'EQUAL'
  | 'IN'
  | 'NOT_EQUAL'
  | 'HAS_ANCESTOR'
  | 'NOT_IN';

export interface PropertyFilter {
  property?: PropertyReference;
  op?: PropertyOperator;
  value?: Value;
}

export interface CompositeFilter {
  op?: 'OPERATOR_UNSPECIFIED' | 'AND' | 'OR';
  filters?: Filter[];
}

export interface Filter {
  compositeFilter?: CompositeFilter;
  propertyFilter?: PropertyFilter;
}

export interface PropertyOrder {
  property?: PropertyReference;
  direction?: 'DIRECTION_UNSPECIFIED' | 'ASCENDING' | 'DESCENDING';
}

export interface Query {
  projection?: Array<{ property?: PropertyReference }>;
  kind?: Array<{ name?: string }>;
  filter?: Filter;
  order?: PropertyOrder[];
  distinctOn?: PropertyReference[];
  startCursor?: Uint8Array;
  endCursor?: Uint8Array;
  offset?: number;
  limit?: { value?: number };
  findNearest?: object;
}

export interface TransactionOptions {
  readWrite?: { previousTransaction?: Uint8Array };
  readOnly?: { readTime?: Timestamp };
}

export interface ReadOptions {
  readConsistency?: 'READ_CONSISTENCY_UNSPECIFIED' | 'STRONG' | 'EVENTUAL';
  transaction?: Uint8Array;
  newTransaction?: TransactionOptions;
  readTime?: Timestamp;
}

export interface PropertyMask {
  paths?: string[];
}

export interface RequestScope {
  projectId?: string;
  databaseId?: string;
}

export interface LookupRequest extends RequestScope {
  readOptions?: ReadOptions;
  keys?: Key[];
  propertyMask?: PropertyMask;
}

export interface RunQueryRequest extends RequestScope {
  partitionId?: PartitionId;
  readOptions?: ReadOptions;
  query?: Query;
  gqlQuery?: object;
  propertyMask?: PropertyMask;
  explainOptions?: object;
}

export interface Aggregation {
  count?: { upTo?: { value?: string } };
  sum?: { property?: PropertyReference };
  avg?: { property?: PropertyReference };
  alias?: string;
}

export interface RunAggregationQueryRequest extends RequestScope {
  partitionId?: PartitionId;
  readOptions?: ReadOptions;
  aggregationQuery?: { nestedQuery?: Query; aggregations?: Aggregation[] };
  gqlQuery?: object;
  explainOptions?: object;
}

export interface BeginTransactionRequest extends RequestScope {
  transactionOptions?: TransactionOptions;
}

export interface Mutation {
  insert?: Entity;
  update?: Entity;
  upsert?: Entity;
  delete?: Key;
  baseVersion?: string;
  updateTime?: Timestamp;
  conflictResolutionStrategy?: 'STRATEGY_UNSPECIFIED' | 'SERVER_VALUE' | 'FAIL';
  propertyMask?: PropertyMask;
  propertyTransforms?: object[];
}

export interface CommitRequest extends RequestScope {
  mode?: 'MODE_UNSPECIFIED' | 'TRANSACTIONAL' | 'NON_TRANSACTIONAL';
  transaction?: Uint8Array;
  singleUseTransaction?: TransactionOptions;
  mutations?: Mutation[];
}

export interface MutationResult {
  key?: Key;
  version: string;
  createTime?: Timestamp;
  updateTime?: Timestamp;
  conflictDetected: boolean;
}

export interface CommitResponse {
  mutationResults: MutationResult[];
  indexUpdates: number;
  commitTime: Timestamp;
}

export interface RollbackRequest extends RequestScope {
  transaction?: Uint8Array;
}

export interface KeysRequest extends RequestScope {
  keys?: Key[];
}

export type MoreResultsType = 'NOT_FINISHED' | 'MORE_RESULTS_AFTER_LIMIT' | 'MORE_RESULTS_AFTER_CURSOR' | 'NO_MORE_RESULTS';

export interface QueryResultBatch {
  skippedResults: number;
  skippedCursor?: Buffer;
  entityResultType: 'FULL' | 'PROJECTION' | 'KEY_ONLY';
  entityResults: EntityResult[];
  endCursor: Buffer;
  moreResults: MoreResultsType;
  snapshotVersion: string;
  readTime: Timestamp;
}
