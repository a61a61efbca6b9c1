// protobufjs types of the Cloud Tasks (v2, v2beta3), IAM and Locations APIs, loaded from the same
// .proto files the gRPC server uses: the REST surface reads its routes from their google.api.http
// options and converts JSON with Google's proto3 JSON mapping over these types.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { protoIncludeDirs } from './protos.js';

export const REST_PROTO_FILES = [
  'google/cloud/tasks/v2/cloudtasks.proto',
  'google/cloud/tasks/v2beta3/cloudtasks.proto',
  'google/cloud/location/locations.proto',
];

let cached: protobuf.Root | undefined;

export function protobufRoot(): protobuf.Root {
  if (cached) return cached;
  const dirs = protoIncludeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    for (const dir of dirs) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return protobuf.util.path.resolve(origin, target);
  };
  root.loadSync(REST_PROTO_FILES, { keepCase: false });
  root.resolveAll();
  cached = root;
  return root;
}

/** The options proto-loader decodes with, so REST requests reach the handlers in the same shape. */
export const HANDLER_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  defaults: false,
  oneofs: true,
};
