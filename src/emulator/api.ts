// The emulated RPCs as plain functions from a decoded request to a reply, shared by the gRPC server
// and the REST surface: both decode into the shape @grpc/proto-loader gives (camelCase fields, enums
// as strings, 64-bit integers as numbers, bytes as Buffers) and call the same table.
import { status } from '@grpc/grpc-js';
import type { CloudTasksEngine } from './engine.js';
import { ApiError } from './errors.js';
import type { PolicyMessage } from './iam.js';
import type { AppEngineRoutingMessage, DurationMessage, FieldMaskMessage, QueueMessage, TaskMessage, TaskViewName } from './proto-types.js';

export interface CallContext {
  /** Size of the request as protobuf bytes (CreateTask's size limit counts these). */
  requestBytes: number;
}

export type ApiHandler = (request: object, context: CallContext) => object;
export type HandlerTable = Readonly<Record<string, ApiHandler>>;

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
interface IamRequest {
  resource?: string;
  policy?: PolicyMessage | null;
  permissions?: string[];
}

function typed<Request extends object>(handler: (request: Request, context: CallContext) => object): ApiHandler {
  return handler as ApiHandler;
}

/** google.cloud.tasks.v2.CloudTasks. */
export function cloudTasksV2Handlers(engine: CloudTasksEngine): HandlerTable {
  return {
    ListQueues: typed((r: ListQueuesRequest) => engine.listQueues(r.parent, r.filter, r.pageSize, r.pageToken)),
    GetQueue: typed((r: NameRequest) => engine.getQueue(r.name)),
    CreateQueue: typed((r: CreateQueueRequest) => engine.createQueue(r.parent, r.queue)),
    UpdateQueue: typed((r: UpdateQueueRequest) => engine.updateQueue(r.queue, r.updateMask?.paths ?? [])),
    DeleteQueue: typed((r: NameRequest) => {
      engine.deleteQueue(r.name);
      return {};
    }),
    PurgeQueue: typed((r: NameRequest) => engine.purgeQueue(r.name)),
    PauseQueue: typed((r: NameRequest) => engine.pauseQueue(r.name)),
    ResumeQueue: typed((r: NameRequest) => engine.resumeQueue(r.name)),
    GetIamPolicy: typed((r: IamRequest) => engine.getIamPolicy(r.resource)),
    SetIamPolicy: typed((r: IamRequest) => engine.setIamPolicy(r.resource, r.policy)),
    TestIamPermissions: typed((r: IamRequest) => ({ permissions: engine.testIamPermissions(r.resource, r.permissions) })),
    ListTasks: typed((r: ListTasksRequest) => engine.listTasks(r.parent, r.responseView, r.pageSize, r.pageToken)),
    GetTask: typed((r: NameRequest) => engine.getTask(r.name, r.responseView)),
    CreateTask: typed((r: CreateTaskRequest, context) => engine.createTask(r.parent, r.task, r.responseView, context.requestBytes)),
    DeleteTask: typed((r: NameRequest) => {
      engine.deleteTask(r.name);
      return {};
    }),
    RunTask: typed((r: NameRequest) => engine.runTask(r.name, r.responseView)),
  };
}

/** google.cloud.location.Locations. */
export function locationsHandlers(engine: CloudTasksEngine): HandlerTable {
  return {
    ListLocations: typed((r: NameRequest) => ({ locations: engine.listLocations(r.name), nextPageToken: '' })),
    GetLocation: typed((r: NameRequest) => engine.getLocation(r.name)),
  };
}

// ---- v2beta3: the same engine; queues carry App Engine routing under app_engine_http_queue ----

interface V2beta3Queue extends QueueMessage {
  appEngineHttpQueue?: { appEngineRoutingOverride?: AppEngineRoutingMessage | null } | null;
  type?: string;
  taskTtl?: DurationMessage;
}

const TASK_TTL = { seconds: 31 * 24 * 3600, nanos: 0 };

function queueFromV2beta3(queue: V2beta3Queue | null | undefined): QueueMessage | null | undefined {
  if (!queue) return queue;
  const { appEngineHttpQueue, type, ...rest } = queue;
  if (type === 'PULL') throw new ApiError(status.UNIMPLEMENTED, 'Pull queues are not supported by the emulator.');
  return { ...rest, ...(appEngineHttpQueue?.appEngineRoutingOverride ? { appEngineRoutingOverride: appEngineHttpQueue.appEngineRoutingOverride } : {}) };
}

function queueToV2beta3(queue: QueueMessage): V2beta3Queue {
  const { appEngineRoutingOverride, ...rest } = queue;
  return {
    ...rest,
    ...(appEngineRoutingOverride ? { appEngineHttpQueue: { appEngineRoutingOverride } } : {}),
    type: 'PUSH',
    taskTtl: TASK_TTL,
  };
}

function maskFromV2beta3(paths: readonly string[]): string[] {
  return paths.map((p) =>
    p.replace(/^(app_engine_http_queue|appEngineHttpQueue)\.(app_engine_routing_override|appEngineRoutingOverride)/, 'app_engine_routing_override'),
  );
}

/** google.cloud.tasks.v2beta3.CloudTasks, for Google's samples that still use it. */
export function cloudTasksV2beta3Handlers(engine: CloudTasksEngine): HandlerTable {
  const v2 = cloudTasksV2Handlers(engine);
  const queueReply =
    (handler: ApiHandler): ApiHandler =>
    (request, context) =>
      queueToV2beta3(handler(request, context) as QueueMessage);
  return {
    ...v2,
    ListQueues: (request, context) => {
      const reply = v2.ListQueues!(request, context) as { queues: QueueMessage[]; nextPageToken: string };
      return { ...reply, queues: reply.queues.map(queueToV2beta3) };
    },
    GetQueue: queueReply(v2.GetQueue!),
    CreateQueue: typed((r: CreateQueueRequest & { queue?: V2beta3Queue | null }) => queueToV2beta3(engine.createQueue(r.parent, queueFromV2beta3(r.queue)))),
    UpdateQueue: typed((r: UpdateQueueRequest & { queue?: V2beta3Queue | null }) =>
      queueToV2beta3(engine.updateQueue(queueFromV2beta3(r.queue), maskFromV2beta3(r.updateMask?.paths ?? []))),
    ),
    PurgeQueue: queueReply(v2.PurgeQueue!),
    PauseQueue: queueReply(v2.PauseQueue!),
    ResumeQueue: queueReply(v2.ResumeQueue!),
  };
}
