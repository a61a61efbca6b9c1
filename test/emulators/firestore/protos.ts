// Loads google.firestore.v1.Firestore from the .proto files that @google-cloud/firestore ships (its
// imports resolve against the same package, then google-gax), so the server decodes and encodes
// exactly the client's wire format.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const FIRESTORE_PROTO = 'google/firestore/v1/firestore.proto';
const FIRESTORE_SERVICE = 'google.firestore.v1.Firestore';

/** Walks up from a package's main entry to its build/protos folder (package.json is not exported). */
function protosDirOf(mainEntry: string, probe: string): string {
  let dir = path.dirname(mainEntry);
  for (;;) {
    const candidate = path.join(dir, 'build', 'protos');
    if (fs.existsSync(path.join(candidate, probe))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find build/protos/${probe} above ${mainEntry}`);
    dir = parent;
  }
}

function includeDirs(): string[] {
  const firestoreMain = require.resolve('@google-cloud/firestore');
  // google-gax comes with the Firestore client; resolve it from there in case it is not hoisted.
  const gaxMain = require.resolve('google-gax', { paths: [path.dirname(firestoreMain)] });
  return [protosDirOf(firestoreMain, FIRESTORE_PROTO), protosDirOf(gaxMain, 'google/rpc/status.proto')];
}

let cached: grpc.ServiceDefinition | undefined;

/**
 * The service definition, parsed once per process. Decoding options: camelCase fields, int64 as
 * decimal strings (integer values keep their full 64 bits), enums as names, bytes as Buffers,
 * absent fields left absent, and each oneof's chosen member named (e.g. `valueType`).
 */
export function firestoreServiceDefinition(): grpc.ServiceDefinition {
  if (cached) return cached;
  const packageDefinition = protoLoader.loadSync(FIRESTORE_PROTO, {
    includeDirs: includeDirs(),
    keepCase: false,
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: false,
    arrays: true,
    oneofs: true,
  });
  const service = packageDefinition[FIRESTORE_SERVICE];
  if (!service || !('Commit' in service)) throw new Error(`${FIRESTORE_SERVICE} missing from the loaded protos`);
  cached = service as grpc.ServiceDefinition;
  return cached;
}
