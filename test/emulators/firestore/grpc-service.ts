// gRPC handlers for google.firestore.v1.Firestore: hand each request to the engine and turn its
// FirestoreErrors into statuses. Listen, Write and ExecutePipeline answer UNIMPLEMENTED.
import * as grpc from '@grpc/grpc-js';
import type { FirestoreEngine } from './engine.js';
import { FirestoreError } from './errors.js';

function toStatus(error: unknown): Partial<grpc.StatusObject> {
  if (error instanceof FirestoreError) return { code: error.code, details: error.message };
  // A bug in the emulator: say so on the wire and in the test output.
  console.error('firestore emulator: internal error:', error);
  const message = error instanceof Error ? error.message : String(error);
  return { code: grpc.status.INTERNAL, details: `Internal emulator error: ${message}` };
}

function unary<Request, Reply>(handler: (request: Request) => Reply | Promise<Reply>): grpc.handleUnaryCall<Request, Reply> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => handler(call.request))
      .then(
        (reply) => callback(null, reply),
        (error) => callback(toStatus(error)),
      );
  };
}

/** Server streaming: the engine builds every message first, then they are written in order. */
function serverStream<Request, Reply>(handler: (request: Request) => Promise<Reply[]>): grpc.handleServerStreamingCall<Request, Reply> {
  return (call) => {
    handler(call.request).then(
      (replies) => {
        if (call.cancelled) return;
        for (const reply of replies) call.write(reply);
        call.end();
      },
      (error) => {
        if (call.cancelled) return;
        // Headers first: google-gax treats a stream that fails before any response as a lost
        // connection and silently retries it twice (seconds apart) instead of reporting the status.
        call.sendMetadata(new grpc.Metadata());
        call.emit('error', toStatus(error));
      },
    );
  };
}

function unimplementedStream(rpc: string): grpc.handleBidiStreamingCall<unknown, unknown> {
  return (call) => {
    call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: `${rpc} is not implemented by this emulator.` });
  };
}

const EMPTY = {};

export function firestoreHandlers(engine: FirestoreEngine): grpc.UntypedServiceImplementation {
  return {
    GetDocument: unary(engine.getDocument.bind(engine)),
    ListDocuments: unary(engine.listDocuments.bind(engine)),
    CreateDocument: unary(engine.createDocument.bind(engine)),
    UpdateDocument: unary(engine.updateDocument.bind(engine)),
    DeleteDocument: unary((request: Parameters<FirestoreEngine['deleteDocument']>[0]) => {
      engine.deleteDocument(request);
      return EMPTY;
    }),
    BatchGetDocuments: serverStream(engine.batchGetDocuments.bind(engine)),
    BeginTransaction: unary(engine.beginTransaction.bind(engine)),
    Commit: unary(engine.commit.bind(engine)),
    Rollback: unary((request: Parameters<FirestoreEngine['rollback']>[0]) => {
      engine.rollback(request);
      return EMPTY;
    }),
    RunQuery: serverStream(engine.runQuery.bind(engine)),
    RunAggregationQuery: serverStream(engine.runAggregationQuery.bind(engine)),
    PartitionQuery: unary(engine.partitionQuery.bind(engine)),
    ListCollectionIds: unary(engine.listCollectionIds.bind(engine)),
    BatchWrite: unary(engine.batchWrite.bind(engine)),
    Write: unimplementedStream('Write'),
    Listen: unimplementedStream('Listen'),
    ExecutePipeline: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'ExecutePipeline is not implemented.' });
    },
  };
}
