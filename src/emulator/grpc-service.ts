// gRPC handlers for google.cloud.tasks.v2.CloudTasks (and google.cloud.location.Locations): decode,
// call the engine, and turn its ApiErrors into gRPC statuses.
import * as grpc from '@grpc/grpc-js';
import type { CloudTasksEngine } from './engine.js';
import { ApiError } from './errors.js';
import type { EmulatorLogger } from './options.js';
import type { FieldMaskMessage, QueueMessage, TaskMessage, TaskViewName } from './proto-types.js';
import { CLOUD_TASKS_SERVICE, LOCATIONS_SERVICE, serviceDefinition } from './protos.js';

interface NameRequest {
  name?: string;
  responseView?: TaskViewName;
}
interface ListQueuesRequest {
  parent?: string;
  filter?: string;
  pageSize?: number;
  pageToken?: string;
}
interface CreateQueueRequest {
  parent?: string;
  queue?: QueueMessage | null;
}
interface UpdateQueueRequest {
  queue?: QueueMessage | null;
  updateMask?: FieldMaskMessage | null;
}
interface ListTasksRequest {
  parent?: string;
  responseView?: TaskViewName;
  pageSize?: number;
  pageToken?: string;
}
interface CreateTaskRequest {
  parent?: string;
  task?: TaskMessage | null;
  responseView?: TaskViewName;
}

/** Wraps a synchronous handler: its result is the reply, an ApiError becomes the status. */
function unary<Request, Reply>(
  logger: EmulatorLogger,
  handler: (request: Request) => Reply,
): grpc.handleUnaryCall<Request, Reply> {
  return (call, callback) => {
    try {
      callback(null, handler(call.request));
    } catch (error) {
      if (error instanceof ApiError) {
        callback({ code: error.code, details: error.message });
        return;
      }
      logger.error?.(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      callback({ code: grpc.status.INTERNAL, details: 'Internal error.' });
    }
  };
}

const unimplemented: grpc.handleUnaryCall<unknown, unknown> = (_call, callback) =>
  callback({ code: grpc.status.UNIMPLEMENTED, details: 'IAM policies are not implemented by the emulator.' });

/** Byte size of each CreateTaskRequest as received, for the task size limit. */
const receivedBytes = new WeakMap<object, number>();

/** The CloudTasks service definition, with CreateTask's decoder noting each request's size. */
function cloudTasksDefinition(): grpc.ServiceDefinition {
  const base = serviceDefinition(CLOUD_TASKS_SERVICE);
  const createTask = base['CreateTask']!;
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

export function addCloudTasksServices(server: grpc.Server, engine: CloudTasksEngine, logger: EmulatorLogger): void {
  const handle = <Request, Reply>(handler: (request: Request) => Reply) => unary(logger, handler);
  server.addService(cloudTasksDefinition(), {
    ListQueues: handle((r: ListQueuesRequest) => engine.listQueues(r.parent, r.filter, r.pageSize, r.pageToken)),
    GetQueue: handle((r: NameRequest) => engine.getQueue(r.name)),
    CreateQueue: handle((r: CreateQueueRequest) => engine.createQueue(r.parent, r.queue)),
    UpdateQueue: handle((r: UpdateQueueRequest) => engine.updateQueue(r.queue, r.updateMask?.paths ?? [])),
    DeleteQueue: handle((r: NameRequest) => {
      engine.deleteQueue(r.name);
      return {};
    }),
    PurgeQueue: handle((r: NameRequest) => engine.purgeQueue(r.name)),
    PauseQueue: handle((r: NameRequest) => engine.pauseQueue(r.name)),
    ResumeQueue: handle((r: NameRequest) => engine.resumeQueue(r.name)),
    GetIamPolicy: unimplemented,
    SetIamPolicy: unimplemented,
    TestIamPermissions: unimplemented,
    ListTasks: handle((r: ListTasksRequest) => engine.listTasks(r.parent, r.responseView, r.pageSize, r.pageToken)),
    GetTask: handle((r: NameRequest) => engine.getTask(r.name, r.responseView)),
    CreateTask: handle((r: CreateTaskRequest) =>
      engine.createTask(r.parent, r.task, r.responseView, receivedBytes.get(r) ?? 0),
    ),
    DeleteTask: handle((r: NameRequest) => {
      engine.deleteTask(r.name);
      return {};
    }),
    RunTask: handle((r: NameRequest) => engine.runTask(r.name, r.responseView)),
  });
  server.addService(serviceDefinition(LOCATIONS_SERVICE), {
    ListLocations: handle((r: NameRequest) => ({ locations: engine.listLocations(r.name), nextPageToken: '' })),
    GetLocation: handle((r: NameRequest) => engine.getLocation(r.name)),
  });
}
