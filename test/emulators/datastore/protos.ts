import path from 'node:path';
import type { ServiceDefinition } from '@grpc/grpc-js';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

// Decoding options the rest of the emulator relies on (see types.ts).
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
};

/** Proto folders shipped by the official client and by google-gax (for google/api, google/type). */
function protoIncludeDirs(): string[] {
  // `require.resolve('x/package.json')` is not exported by these packages, so walk up from main.
  const datastoreMain = require.resolve('@google-cloud/datastore');
  const datastoreRoot = path.resolve(path.dirname(datastoreMain), '..', '..');
  const gaxMain = require.resolve('google-gax', { paths: [datastoreRoot] });
  const gaxRoot = path.resolve(path.dirname(gaxMain), '..', '..');
  return [path.join(datastoreRoot, 'build', 'protos'), path.join(gaxRoot, 'build', 'protos')];
}

let cached: ServiceDefinition | undefined;

/** The google.datastore.v1.Datastore service definition, loaded once per process. */
export function datastoreServiceDefinition(): ServiceDefinition {
  if (!cached) {
    const packageDefinition = protoLoader.loadSync('google/datastore/v1/datastore.proto', {
      ...LOADER_OPTIONS,
      includeDirs: protoIncludeDirs(),
    });
    const loaded = grpc.loadPackageDefinition(packageDefinition);
    const v1 = (loaded.google as grpc.GrpcObject).datastore as grpc.GrpcObject;
    const service = (v1.v1 as grpc.GrpcObject).Datastore as grpc.ServiceClientConstructor;
    cached = service.service;
  }
  return cached;
}
