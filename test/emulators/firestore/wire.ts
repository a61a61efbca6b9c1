// Shapes of the google.firestore.v1 messages as @grpc/proto-loader decodes and encodes them (see
// protos.ts for the options): only the fields the emulator reads or writes. Decoded messages can
// lack any field, so everything is optional; `null` appears where proto-loader leaves a message out.

export interface WireTimestamp {
  seconds?: string | number;
  nanos?: number;
}

export interface WireValue {
  valueType?: string;
  nullValue?: 'NULL_VALUE' | number;
  booleanValue?: boolean;
  integerValue?: string | number;
  doubleValue?: number;
  timestampValue?: WireTimestamp | null;
  stringValue?: string;
  bytesValue?: Buffer | Uint8Array;
  referenceValue?: string;
  geoPointValue?: { latitude?: number; longitude?: number } | null;
  arrayValue?: { values?: WireValue[] } | null;
  mapValue?: { fields?: Record<string, WireValue> } | null;
}

export interface WireDocument {
  name?: string;
  fields?: Record<string, WireValue>;
  createTime?: WireTimestamp | null;
  updateTime?: WireTimestamp | null;
}

export interface WireDocumentMask {
  fieldPaths?: string[];
}

export interface WirePrecondition {
  conditionType?: string;
  exists?: boolean;
  updateTime?: WireTimestamp | null;
}

export interface WireFieldTransform {
  fieldPath?: string;
  transformType?: string;
  setToServerValue?: 'SERVER_VALUE_UNSPECIFIED' | 'REQUEST_TIME' | number;
  increment?: WireValue | null;
  maximum?: WireValue | null;
  minimum?: WireValue | null;
  appendMissingElements?: { values?: WireValue[] } | null;
  removeAllFromArray?: { values?: WireValue[] } | null;
}

export interface WireWrite {
  operation?: string;
  update?: WireDocument | null;
  delete?: string;
  transform?: { document?: string; fieldTransforms?: WireFieldTransform[] } | null;
  updateMask?: WireDocumentMask | null;
  updateTransforms?: WireFieldTransform[];
  currentDocument?: WirePrecondition | null;
}

export interface WireWriteResult {
  updateTime?: WireTimestamp;
  transformResults: WireValue[];
}

export interface WireStatus {
  code: number;
  message: string;
}

export interface WireFieldReference {
  fieldPath?: string;
}

export interface WireFieldFilter {
  field?: WireFieldReference | null;
  op?: string;
  value?: WireValue | null;
}

export interface WireUnaryFilter {
  op?: string;
  field?: WireFieldReference | null;
}

export interface WireCompositeFilter {
  op?: string;
  filters?: WireFilter[];
}

export interface WireFilter {
  filterType?: string;
  compositeFilter?: WireCompositeFilter | null;
  fieldFilter?: WireFieldFilter | null;
  unaryFilter?: WireUnaryFilter | null;
}

export interface WireOrder {
  field?: WireFieldReference | null;
  direction?: string;
}

export interface WireCursor {
  values?: WireValue[];
  before?: boolean;
}

export interface WireStructuredQuery {
  select?: { fields?: WireFieldReference[] } | null;
  from?: { collectionId?: string; allDescendants?: boolean }[];
  where?: WireFilter | null;
  orderBy?: WireOrder[];
  startAt?: WireCursor | null;
  endAt?: WireCursor | null;
  offset?: number;
  limit?: { value?: number } | null;
  findNearest?: object | null;
}

export interface WireAggregation {
  operator?: string;
  count?: { upTo?: { value?: string | number } | null } | null;
  sum?: { field?: WireFieldReference | null } | null;
  avg?: { field?: WireFieldReference | null } | null;
  alias?: string;
}

export interface WireTransactionOptions {
  mode?: string;
  readOnly?: { readTime?: WireTimestamp | null } | null;
  readWrite?: { retryTransaction?: Buffer } | null;
}

/** The consistency selector every read request shares (a oneof of three). */
export interface WireConsistency {
  transaction?: Buffer;
  newTransaction?: WireTransactionOptions | null;
  readTime?: WireTimestamp | null;
}

export interface BatchGetDocumentsRequest extends WireConsistency {
  database?: string;
  documents?: string[];
  mask?: WireDocumentMask | null;
}

export interface BatchGetDocumentsResponse {
  found?: WireDocument;
  missing?: string;
  transaction?: Buffer;
  readTime?: WireTimestamp;
}

export interface RunQueryRequest extends WireConsistency {
  parent?: string;
  structuredQuery?: WireStructuredQuery | null;
  explainOptions?: object | null;
}

export interface RunQueryResponse {
  transaction?: Buffer;
  document?: WireDocument;
  readTime?: WireTimestamp;
  skippedResults?: number;
  done?: boolean;
}

export interface RunAggregationQueryRequest extends WireConsistency {
  parent?: string;
  structuredAggregationQuery?: {
    structuredQuery?: WireStructuredQuery | null;
    aggregations?: WireAggregation[];
  } | null;
}

export interface RunAggregationQueryResponse {
  result?: { aggregateFields: Record<string, WireValue> };
  transaction?: Buffer;
  readTime?: WireTimestamp;
}

export interface GetDocumentRequest {
  name?: string;
  mask?: WireDocumentMask | null;
  transaction?: Buffer;
  readTime?: WireTimestamp | null;
}

export interface ListDocumentsRequest {
  parent?: string;
  collectionId?: string;
  pageSize?: number;
  pageToken?: string;
  orderBy?: string;
  mask?: WireDocumentMask | null;
  transaction?: Buffer;
  readTime?: WireTimestamp | null;
  showMissing?: boolean;
}

export interface ListDocumentsResponse {
  documents: WireDocument[];
  nextPageToken: string;
}

export interface ListCollectionIdsRequest {
  parent?: string;
  pageSize?: number;
  pageToken?: string;
  readTime?: WireTimestamp | null;
}

export interface ListCollectionIdsResponse {
  collectionIds: string[];
  nextPageToken: string;
}

export interface CreateDocumentRequest {
  parent?: string;
  collectionId?: string;
  documentId?: string;
  document?: WireDocument | null;
  mask?: WireDocumentMask | null;
}

export interface UpdateDocumentRequest {
  document?: WireDocument | null;
  updateMask?: WireDocumentMask | null;
  mask?: WireDocumentMask | null;
  currentDocument?: WirePrecondition | null;
}

export interface DeleteDocumentRequest {
  name?: string;
  currentDocument?: WirePrecondition | null;
}

export interface CommitRequest {
  database?: string;
  writes?: WireWrite[];
  transaction?: Buffer;
}

export interface CommitResponse {
  writeResults: WireWriteResult[];
  commitTime: WireTimestamp;
}

export interface BatchWriteRequest {
  database?: string;
  writes?: WireWrite[];
}

export interface BatchWriteResponse {
  writeResults: WireWriteResult[];
  status: WireStatus[];
}

export interface BeginTransactionRequest {
  database?: string;
  options?: WireTransactionOptions | null;
}

export interface BeginTransactionResponse {
  transaction: Buffer;
}

export interface RollbackRequest {
  database?: string;
  transaction?: Buffer;
}

export interface PartitionQueryRequest {
  parent?: string;
  structuredQuery?: WireStructuredQuery | null;
  partitionCount?: string | number;
  pageToken?: string;
  pageSize?: number;
  readTime?: WireTimestamp | null;
}

export interface PartitionQueryResponse {
  partitions: WireCursor[];
  nextPageToken: string;
}
