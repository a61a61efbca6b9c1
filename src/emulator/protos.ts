// Loads the Cloud Tasks v2 (and v2beta3) and Locations service definitions from the protos shipped with the
// official client (@google-cloud/tasks) and google-gax, so the server speaks exactly their wire format.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const TASKS_PROTO = 'google/cloud/tasks/v2/cloudtasks.proto';
const TASKS_V2BETA3_PROTO = 'google/cloud/tasks/v2beta3/cloudtasks.proto';
const LOCATIONS_PROTO = 'google/cloud/location/locations.proto';

export const CLOUD_TASKS_SERVICE = 'google.cloud.tasks.v2.CloudTasks';
export const CLOUD_TASKS_V2BETA3_SERVICE = 'google.cloud.tasks.v2beta3.CloudTasks';
export const LOCATIONS_SERVICE = 'google.cloud.location.Locations';

/** Walks up from a package's main entry to the folder holding build/protos/<probe>. */
function protosDirOf(mainEntry: string, probe: string): string {
  let dir = path.dirname(mainEntry);
  for (;;) {
    const candidate = path.join(dir, 'build', 'protos');
    if (fs.existsSync(path.join(candidate, probe))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find ${probe} above ${mainEntry}`);
    dir = parent;
  }
}

export function protoIncludeDirs(): string[] {
  const tasksMain = require.resolve('@google-cloud/tasks');
  // google-gax comes with @google-cloud/tasks; resolve it from there in case it is not hoisted.
  const gaxMain = require.resolve('google-gax', { paths: [path.dirname(tasksMain)] });
  return [protosDirOf(tasksMain, TASKS_PROTO), protosDirOf(gaxMain, LOCATIONS_PROTO)];
}

let cached: protoLoader.PackageDefinition | undefined;

/** The package definition, loaded once per process (the protos take a moment to parse). */
export function loadCloudTasksPackage(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync([TASKS_PROTO, TASKS_V2BETA3_PROTO, LOCATIONS_PROTO], {
    includeDirs: protoIncludeDirs(),
    keepCase: false,
    longs: Number,
    enums: String,
    bytes: Buffer,
    defaults: false,
    oneofs: true,
  });
  return cached;
}

export function serviceDefinition(name: string): grpc.ServiceDefinition {
  const definition = loadCloudTasksPackage()[name];
  if (!definition || !('CreateTask' in definition || 'ListLocations' in definition)) {
    throw new Error(`service ${name} missing from the loaded protos`);
  }
  return definition as grpc.ServiceDefinition;
}
