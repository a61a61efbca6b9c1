/**
 * The queue transport as the core sees it. src/queue implements it with the official
 * @google-cloud/tasks client (against Cloud Tasks or the emulator).
 */
export interface HttpTarget {
  kind: 'http';
  url: string;
  /** Cloud Tasks adds a Google-signed OIDC token for this service account. */
  oidc?: { serviceAccountEmail: string; audience?: string };
}

export interface AppEngineTarget {
  kind: 'appEngine';
  relativeUri: string;
  service?: string;
  version?: string;
  instance?: string;
}

export type QueueTarget = HttpTarget | AppEngineTarget;

export interface EnqueueRequest {
  /** Short queue id, e.g. "default". */
  queue: string;
  /** Short Cloud Tasks task id; set it to get Cloud Tasks' name de-duplication. */
  taskId?: string;
  /** Epoch ms; omitted = now. */
  scheduleTime?: number;
  dispatchDeadlineMs?: number;
  /** Base64 of the body keeps the entry JSON-serialisable for outboxes. */
  bodyBase64: string;
  headers: Record<string, string>;
  target: QueueTarget;
}

export interface RateLimits {
  maxDispatchesPerSecond?: number;
  maxConcurrentDispatches?: number;
  /** Output only on Cloud Tasks; reported back by getQueue. */
  maxBurstSize?: number;
}

export interface RetryConfig {
  /** Counts the first attempt; -1 = unlimited. */
  maxAttempts?: number;
  /** 0 = unlimited. */
  maxRetryDurationSeconds?: number;
  minBackoffSeconds?: number;
  maxBackoffSeconds?: number;
  maxDoublings?: number;
}

export interface QueueConfig {
  name: string;
  rateLimits?: RateLimits;
  retryConfig?: RetryConfig;
}

export interface QueueInfo extends QueueConfig {
  state: 'RUNNING' | 'PAUSED' | 'DISABLED' | 'STATE_UNSPECIFIED';
  resourceName: string;
}

export interface QueuedTaskInfo {
  name: string;
  scheduleTime?: number;
  dispatchCount: number;
  responseCount: number;
  /** The cloud-defer record id its envelope carries, when the transport can read the body. */
  taskId?: string;
}

export interface QueueTransport {
  /** Throws CloudDeferError TASK_ALREADY_EXISTS when `taskId` is taken (de-duplication). */
  enqueue(request: EnqueueRequest): Promise<{ name: string }>;
  /** Create the queue or bring it to this configuration (UpdateQueue with a field mask). */
  ensureQueue(config: QueueConfig): Promise<QueueInfo>;
  getQueue(queue: string): Promise<QueueInfo | undefined>;
  listQueues(): Promise<QueueInfo[]>;
  pauseQueue(queue: string): Promise<void>;
  resumeQueue(queue: string): Promise<void>;
  purgeQueue(queue: string): Promise<void>;
  listTasks(queue: string): Promise<QueuedTaskInfo[]>;
  /** Force a dispatch now, as Cloud Tasks' RunTask. */
  runTask(name: string): Promise<void>;
  deleteTask(name: string): Promise<void>;
  close(): Promise<void>;
}

/** A Cloud Tasks queue id: 1-100 letters, digits or hyphens. The one rule the package uses. */
export const QUEUE_ID = /^[A-Za-z0-9-]{1,100}$/;

export function isQueueId(value: unknown): value is string {
  return typeof value === 'string' && QUEUE_ID.test(value);
}
