/** Shared set-up for the emulator suites: a client per suite, a raw gRPC client, error checks. */
import * as assert from 'node:assert/strict';
import { DatastoreClient } from '@google-cloud/datastore';
import { datastoreForTests, type DatastoreForTests } from './harness.js';

export interface DatastoreTestContext extends DatastoreForTests {
  /** The generated v1 client, for checks at the protocol level (versions, cursors, batches). */
  raw: DatastoreClient;
  /** The partition `raw` requests address: the harness namespace, if any. */
  partitionId: { namespaceId?: string };
}

/** Starts a client (and our emulator unless DATASTORE_EMULATOR_HOST is set) for one suite. */
export function useDatastore(): () => DatastoreTestContext {
  let context: DatastoreTestContext | undefined;
  before(async () => {
    const harness = await datastoreForTests();
    const raw = new DatastoreClient({ ...harness.datastore.options });
    context = { ...harness, raw, partitionId: harness.namespace ? { namespaceId: harness.namespace } : {} };
  });
  after(async () => {
    await context?.raw.close();
    await context?.stop();
  });
  return () => {
    if (!context) throw new Error('useDatastore(): the suite has not started yet');
    return context;
  };
}

let kinds = 0;
/** A kind no other test uses, so tests sharing an emulator (or an external one) stay apart. */
export function uniqueKind(base: string): string {
  kinds += 1;
  return `${base}${kinds}`;
}

interface GrpcLikeError {
  code?: number;
  details?: string;
  message?: string;
}

/** Awaits a call that must fail with the given gRPC code (and a message containing `text`). */
export async function assertRpcError(call: Promise<unknown>, code: number, text?: string): Promise<GrpcLikeError> {
  let failure: GrpcLikeError | undefined;
  try {
    await call;
  } catch (error) {
    failure = error as GrpcLikeError;
  }
  assert.ok(failure, `expected gRPC code ${code}, but the call succeeded`);
  assert.equal(failure.code, code, `expected gRPC code ${code}, got ${failure.code}: ${failure.message}`);
  if (text) assert.ok(`${failure.details ?? failure.message}`.includes(text), `"${failure.details}" should include "${text}"`);
  return failure;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
