// gRPC handlers for google.cloud.tasks.v2.CloudTasks (plus v2beta3 and google.cloud.location.Locations):
// decode, call the shared handler table, and turn its ApiErrors into gRPC statuses.
import * as grpc from '@grpc/grpc-js';
import { cloudTasksV2beta3Handlers, cloudTasksV2Handlers, locationsHandlers, type HandlerTable } from './api.js';
import type { CloudTasksEngine } from './engine.js';
import { ApiError } from './errors.js';
import type { EmulatorLogger } from './options.js';
import { CLOUD_TASKS_SERVICE, CLOUD_TASKS_V2BETA3_SERVICE, LOCATIONS_SERVICE, serviceDefinition } from './protos.js';

/** Byte size of each CreateTaskRequest as received, for the task size limit. */
const receivedBytes = new WeakMap<object, number>();

/** The service definition, with CreateTask's decoder noting each request's size. */
function measuredDefinition(name: string): grpc.ServiceDefinition {
  const base = serviceDefinition(name);
  const createTask = base['CreateTask'];
  if (!createTask) return base;
  return {
    ...base,
    CreateTask: {
      ...createTask,
      requestDeserialize: (bytes: Buffer) => {
        const request = createTask.requestDeserialize(bytes) as object;
        receivedBytes.set(request, bytes.length);
        return request;
      },
    },
  };
}

function implementation(table: HandlerTable, logger: EmulatorLogger): grpc.UntypedServiceImplementation {
  const methods: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(table)) {
    const call: grpc.handleUnaryCall<object, object> = (unaryCall, callback) => {
      try {
        callback(null, handler(unaryCall.request, { requestBytes: receivedBytes.get(unaryCall.request) ?? 0 }));
      } catch (error) {
        if (error instanceof ApiError) {
          callback({ code: error.code, details: error.message });
          return;
        }
        logger.error?.(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        callback({ code: grpc.status.INTERNAL, details: 'Internal error.' });
      }
    };
    methods[name] = call;
  }
  return methods;
}

const unimplemented: grpc.handleUnaryCall<unknown, unknown> = (_call, callback) =>
  callback({ code: grpc.status.UNIMPLEMENTED, details: 'Not implemented by the emulator.' });

export function addCloudTasksServices(server: grpc.Server, engine: CloudTasksEngine, logger: EmulatorLogger): void {
  server.addService(measuredDefinition(CLOUD_TASKS_SERVICE), implementation(cloudTasksV2Handlers(engine), logger));
  const v2beta3 = measuredDefinition(CLOUD_TASKS_V2BETA3_SERVICE);
  const v2beta3Methods = implementation(cloudTasksV2beta3Handlers(engine), logger);
  for (const method of Object.keys(v2beta3)) v2beta3Methods[method] ??= unimplemented;
  server.addService(v2beta3, v2beta3Methods);
  server.addService(serviceDefinition(LOCATIONS_SERVICE), implementation(locationsHandlers(engine), logger));
}
