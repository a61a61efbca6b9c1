/** The queue transport over the official @google-cloud/tasks client (Cloud Tasks or an emulator). */
import type { CloudTasksClient, protos } from '@google-cloud/tasks';
import { CloudDeferError } from '../core/errors.js';
import type { EnqueueRequest, QueueConfig, QueueInfo, QueuedTaskInfo, QueueTransport, RetryConfig } from '../core/transport.js';

type ITask = protos.google.cloud.tasks.v2.ITask;
type IQueue = protos.google.cloud.tasks.v2.IQueue;
type IDuration = protos.google.protobuf.IDuration;
type ITimestamp = protos.google.protobuf.ITimestamp;

const GRPC_ALREADY_EXISTS = 6;
const GRPC_NOT_FOUND = 5;
const GRPC_INVALID_ARGUMENT = 3;
const GRPC_FAILED_PRECONDITION = 9;

export interface CloudTasksTransportOptions {
  client: CloudTasksClient;
  projectId: string;
  location: string;
  /**
   * The configuration of a queue this app declared. An enqueue that finds its queue missing (an
   * emulator that restarted and forgot its queues) creates it from this and tries once more.
   */
  queueConfig?: (queue: string) => QueueConfig | undefined;
}

function duration(seconds: number): IDuration {
  const whole = Math.floor(seconds);
  return { seconds: whole, nanos: Math.round((seconds - whole) * 1e9) };
}

function timestamp(ms: number): ITimestamp {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

function seconds(value: IDuration | null | undefined): number | undefined {
  if (!value) return undefined;
  return Number(value.seconds ?? 0) + (value.nanos ?? 0) / 1e9;
}

function millis(value: ITimestamp | null | undefined): number | undefined {
  if (!value) return undefined;
  return Number(value.seconds ?? 0) * 1000 + Math.floor((value.nanos ?? 0) / 1e6);
}

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Google's errors become ours with a message that says what to do. */
function translate(err: unknown, what: string): Error {
  const message = err instanceof Error ? err.message : String(err);
  switch (grpcCode(err)) {
    case GRPC_ALREADY_EXISTS:
      return new CloudDeferError('TASK_ALREADY_EXISTS', `${what}: already exists (${message}). A named task blocks its name for about an hour after it ran.`, {
        cause: err,
      });
    case GRPC_NOT_FOUND:
      return new CloudDeferError(
        'NOT_FOUND',
        `${what}: not found (${message}). Declare the queue in createDeferred({ queues: [...] }) or create it with gcloud.`,
        { cause: err },
      );
    case GRPC_INVALID_ARGUMENT:
    case GRPC_FAILED_PRECONDITION:
      return new CloudDeferError('INVALID_OPTION', `${what}: ${message}`, { cause: err });
    default:
      return new CloudDeferError('ENQUEUE_FAILED', `${what}: ${message}`, { cause: err });
  }
}

export class CloudTasksTransport implements QueueTransport {
  private readonly client: CloudTasksClient;
  private readonly parent: string;
  private readonly queueConfig: ((queue: string) => QueueConfig | undefined) | undefined;

  constructor(options: CloudTasksTransportOptions) {
    this.client = options.client;
    this.queueConfig = options.queueConfig;
    this.parent = `projects/${options.projectId}/locations/${options.location}`;
  }

  queuePath(queue: string): string {
    return `${this.parent}/queues/${queue}`;
  }

  async enqueue(request: EnqueueRequest): Promise<{ name: string }> {
    const queuePath = this.queuePath(request.queue);
    const body = Buffer.from(request.bodyBase64, 'base64');
    const task: ITask = {};
    if (request.taskId) task.name = `${queuePath}/tasks/${request.taskId}`;
    if (request.scheduleTime !== undefined) task.scheduleTime = timestamp(request.scheduleTime);
    if (request.dispatchDeadlineMs !== undefined) task.dispatchDeadline = duration(request.dispatchDeadlineMs / 1000);
    const target = request.target;
    if (target.kind === 'http') {
      task.httpRequest = {
        url: target.url,
        httpMethod: 'POST',
        headers: request.headers,
        body,
        ...(target.oidc ? { oidcToken: { serviceAccountEmail: target.oidc.serviceAccountEmail, audience: target.oidc.audience ?? target.url } } : {}),
      };
    } else {
      task.appEngineHttpRequest = {
        httpMethod: 'POST',
        relativeUri: target.relativeUri,
        headers: request.headers,
        body,
        appEngineRouting: {
          ...(target.service ? { service: target.service } : {}),
          ...(target.version ? { version: target.version } : {}),
          ...(target.instance ? { instance: target.instance } : {}),
        },
      };
    }
    try {
      const [created] = await this.client.createTask({ parent: queuePath, task });
      return { name: created.name ?? task.name ?? '' };
    } catch (err) {
      const config = grpcCode(err) === GRPC_NOT_FOUND ? this.queueConfig?.(request.queue) : undefined;
      if (!config) throw translate(err, `Cannot enqueue on queue ${request.queue}`);
    }
    // A declared queue is gone (the emulator restarted): bring it back and enqueue once more.
    await this.ensureQueue(this.queueConfig!(request.queue)!);
    try {
      const [created] = await this.client.createTask({ parent: queuePath, task });
      return { name: created.name ?? task.name ?? '' };
    } catch (err) {
      throw translate(err, `Cannot enqueue on queue ${request.queue}`);
    }
  }

  async ensureQueue(config: QueueConfig): Promise<QueueInfo> {
    const queue: IQueue = { name: this.queuePath(config.name) };
    const paths: string[] = [];
    const rate = config.rateLimits ?? {};
    if (rate.maxDispatchesPerSecond !== undefined || rate.maxConcurrentDispatches !== undefined) {
      queue.rateLimits = {};
      if (rate.maxDispatchesPerSecond !== undefined) {
        queue.rateLimits.maxDispatchesPerSecond = rate.maxDispatchesPerSecond;
        paths.push('rate_limits.max_dispatches_per_second');
      }
      if (rate.maxConcurrentDispatches !== undefined) {
        queue.rateLimits.maxConcurrentDispatches = rate.maxConcurrentDispatches;
        paths.push('rate_limits.max_concurrent_dispatches');
      }
    }
    const retry: RetryConfig = config.retryConfig ?? {};
    const retryFields: Array<[keyof RetryConfig, string, (v: number) => unknown]> = [
      ['maxAttempts', 'max_attempts', (v) => v],
      ['maxRetryDurationSeconds', 'max_retry_duration', duration],
      ['minBackoffSeconds', 'min_backoff', duration],
      ['maxBackoffSeconds', 'max_backoff', duration],
      ['maxDoublings', 'max_doublings', (v) => v],
    ];
    const retryConfig: Record<string, unknown> = {};
    for (const [key, path, convert] of retryFields) {
      const value = retry[key];
      if (value === undefined) continue;
      retryConfig[key.replace('Seconds', '')] = convert(value);
      paths.push(`retry_config.${path}`);
    }
    if (paths.some((p) => p.startsWith('retry_config.'))) queue.retryConfig = retryConfig;
    try {
      if (paths.length === 0) {
        // Nothing to set: create it if missing, leave an existing queue as it is.
        const existing = await this.getQueue(config.name);
        if (existing) return existing;
        const [created] = await this.client.createQueue({ parent: this.parent, queue });
        return this.toInfo(created);
      }
      // UpdateQueue creates the queue when it does not exist (Cloud Tasks' own rule).
      const [updated] = await this.client.updateQueue({ queue, updateMask: { paths } });
      return this.toInfo(updated);
    } catch (err) {
      throw translate(err, `Cannot create or update queue ${config.name}`);
    }
  }

  async getQueue(queue: string): Promise<QueueInfo | undefined> {
    try {
      const [found] = await this.client.getQueue({ name: this.queuePath(queue) });
      return this.toInfo(found);
    } catch (err) {
      if (grpcCode(err) === GRPC_NOT_FOUND) return undefined;
      throw translate(err, `Cannot read queue ${queue}`);
    }
  }

  async listQueues(): Promise<QueueInfo[]> {
    try {
      const [queues] = await this.client.listQueues({ parent: this.parent });
      return queues.map((q) => this.toInfo(q));
    } catch (err) {
      throw translate(err, 'Cannot list queues');
    }
  }

  async pauseQueue(queue: string): Promise<void> {
    await this.client.pauseQueue({ name: this.queuePath(queue) }).catch((err: unknown) => {
      throw translate(err, `Cannot pause queue ${queue}`);
    });
  }

  async resumeQueue(queue: string): Promise<void> {
    await this.client.resumeQueue({ name: this.queuePath(queue) }).catch((err: unknown) => {
      throw translate(err, `Cannot resume queue ${queue}`);
    });
  }

  async purgeQueue(queue: string): Promise<void> {
    await this.client.purgeQueue({ name: this.queuePath(queue) }).catch((err: unknown) => {
      throw translate(err, `Cannot purge queue ${queue}`);
    });
  }

  async listTasks(queue: string): Promise<QueuedTaskInfo[]> {
    try {
      // FULL view: the body names the record, so the console can match a task to its record.
      const [tasks] = await this.client.listTasks({ parent: this.queuePath(queue), responseView: 'FULL' });
      return tasks.map((t) => {
        const taskId = envelopeId(t.httpRequest?.body ?? t.appEngineHttpRequest?.body);
        return {
          name: t.name ?? '',
          ...(t.scheduleTime ? { scheduleTime: millis(t.scheduleTime)! } : {}),
          dispatchCount: t.dispatchCount ?? 0,
          responseCount: t.responseCount ?? 0,
          ...(taskId ? { taskId } : {}),
        };
      });
    } catch (err) {
      throw translate(err, `Cannot list tasks of queue ${queue}`);
    }
  }

  async runTask(name: string): Promise<void> {
    await this.client.runTask({ name }).catch((err: unknown) => {
      throw translate(err, `Cannot run task ${name}`);
    });
  }

  async deleteTask(name: string): Promise<void> {
    await this.client.deleteTask({ name }).catch((err: unknown) => {
      if (grpcCode(err) === GRPC_NOT_FOUND) return;
      throw translate(err, `Cannot delete task ${name}`);
    });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private toInfo(queue: IQueue): QueueInfo {
    const name = queue.name ?? '';
    const rate = queue.rateLimits ?? {};
    const retry = queue.retryConfig ?? {};
    const state = typeof queue.state === 'string' ? queue.state : 'STATE_UNSPECIFIED';
    return {
      name: name.slice(name.lastIndexOf('/') + 1),
      resourceName: name,
      state: (['RUNNING', 'PAUSED', 'DISABLED'].includes(state) ? state : 'STATE_UNSPECIFIED') as QueueInfo['state'],
      rateLimits: {
        ...(rate.maxDispatchesPerSecond != null ? { maxDispatchesPerSecond: rate.maxDispatchesPerSecond } : {}),
        ...(rate.maxConcurrentDispatches != null ? { maxConcurrentDispatches: rate.maxConcurrentDispatches } : {}),
        ...(rate.maxBurstSize != null ? { maxBurstSize: rate.maxBurstSize } : {}),
      },
      retryConfig: {
        ...(retry.maxAttempts != null ? { maxAttempts: retry.maxAttempts } : {}),
        ...(retry.maxRetryDuration ? { maxRetryDurationSeconds: seconds(retry.maxRetryDuration)! } : {}),
        ...(retry.minBackoff ? { minBackoffSeconds: seconds(retry.minBackoff)! } : {}),
        ...(retry.maxBackoff ? { maxBackoffSeconds: seconds(retry.maxBackoff)! } : {}),
        ...(retry.maxDoublings != null ? { maxDoublings: retry.maxDoublings } : {}),
      },
    };
  }
}

/** The record id of a cloud-defer envelope body, or undefined for any other body. */
function envelopeId(body: Uint8Array | string | null | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const text = typeof body === 'string' ? Buffer.from(body, 'base64').toString('utf8') : Buffer.from(body).toString('utf8');
    const parsed = JSON.parse(text) as { id?: unknown };
    return typeof parsed.id === 'string' ? parsed.id : undefined;
  } catch {
    return undefined;
  }
}
