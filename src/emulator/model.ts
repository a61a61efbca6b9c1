// The emulator's in-memory records of queues and tasks, kept small: with 100,000 scheduled tasks each
// record must cost well under 2 KiB beyond its body.
import type { HeapItem } from './heap.js';
import type { AppEngineRouting, QueueConfig } from './queue-config.js';
import type { HttpMethodName, QueueStateName } from './proto-types.js';
import type { QueueName } from './names.js';
import { burstSizeFor } from './queue-config.js';
import { TokenBucket } from './token-bucket.js';

export interface OidcTokenSpec {
  serviceAccountEmail: string;
  /** Empty = the target URL. */
  audience: string;
}

export interface OAuthTokenSpec {
  serviceAccountEmail: string;
  scope: string;
}

export interface HttpTargetSpec {
  kind: 'http';
  url: string;
  method: HttpMethodName;
  headers: Record<string, string>;
  body: Buffer | null;
  oidc: OidcTokenSpec | null;
  oauth: OAuthTokenSpec | null;
}

export interface AppEngineTargetSpec {
  kind: 'appEngine';
  method: HttpMethodName;
  relativeUri: string;
  routing: AppEngineRouting | null;
  headers: Record<string, string>;
  body: Buffer | null;
}

export type TargetSpec = HttpTargetSpec | AppEngineTargetSpec;

/** One attempt as the API reports it in first_attempt / last_attempt. */
export interface AttemptRecord {
  scheduleTime: number;
  dispatchTime: number;
  /** Set once the attempt ended (answered, timed out or failed to connect). */
  responseTime?: number;
  /** google.rpc.Code of the outcome. */
  statusCode?: number;
  statusMessage?: string;
  /** The HTTP status the target answered with, if it answered. */
  httpStatus?: number;
  /** Why the attempt failed, sent as X-CloudTasks-TaskRetryReason on the next one. */
  failureReason?: string;
  /** Started by RunTask: a retry is counted from this attempt's dispatch. */
  viaRunTask?: boolean;
}

/** scheduled: waiting in the heap; ready: due, waiting for the queue; running: being dispatched. */
export type TaskState = 'scheduled' | 'ready' | 'running' | 'gone';

export class TaskRecord implements HeapItem {
  /** The task's schedule_time (ms); the heap orders tasks by it. */
  dueAt: number;
  heapIndex = -1;
  state: TaskState = 'scheduled';
  dispatchCount = 0;
  responseCount = 0;
  /** Answered attempts other than 5xx: X-CloudTasks-TaskExecutionCount. */
  executionCount = 0;
  firstDispatchTime = -1;
  lastAttempt: AttemptRecord | null = null;
  /** Attempts under way (RunTask may start one while another is running). */
  inFlight = 0;

  constructor(
    readonly queue: QueueRecord,
    readonly id: string,
    /** Creation sequence: ties in the heap and the ListTasks cursor. */
    readonly order: number,
    readonly createTime: number,
    scheduleTime: number,
    /** 0 = the App Engine default deadline, reported as unset. */
    readonly dispatchDeadlineMs: number,
    readonly target: TargetSpec,
  ) {
    this.dueAt = scheduleTime;
  }
}

/** A pending wake-up of a queue whose rate limit ran out of tokens. */
export class QueueWakeup implements HeapItem {
  dueAt = 0;
  order = -1;
  heapIndex = -1;
  constructor(readonly queue: QueueRecord) {}
}

export class QueueRecord {
  readonly fullName: string;
  state: Exclude<QueueStateName, 'STATE_UNSPECIFIED'> = 'RUNNING';
  /** Set once DeleteQueue removed it: attempts still under way finish unheard. */
  deleted = false;
  purgeTime: number | undefined;
  readonly tasks = new Map<string, TaskRecord>();
  /** Names of tasks that completed or were deleted, blocked until the value (ms), oldest first. */
  readonly tombstones = new Map<string, number>();
  /** Due tasks waiting for the queue (paused, out of tokens, at max concurrency), oldest first. */
  private readonly readyTasks = new Set<TaskRecord>();
  inFlight = 0;
  readonly bucket: TokenBucket;
  readonly wakeup: QueueWakeup;

  constructor(
    readonly name: QueueName,
    fullName: string,
    public config: QueueConfig,
    now: number,
  ) {
    this.fullName = fullName;
    this.bucket = new TokenBucket(config.rateLimits.maxDispatchesPerSecond, this.maxBurstSize, now);
    this.wakeup = new QueueWakeup(this);
  }

  get maxBurstSize(): number {
    return this.config.maxBurstSize ?? burstSizeFor(this.config.rateLimits.maxDispatchesPerSecond);
  }

  reconfigure(config: QueueConfig, now: number): void {
    this.config = config;
    this.bucket.reconfigure(config.rateLimits.maxDispatchesPerSecond, this.maxBurstSize, now);
  }

  pushReady(task: TaskRecord): void {
    task.state = 'ready';
    this.readyTasks.add(task);
  }

  removeReady(task: TaskRecord): void {
    this.readyTasks.delete(task);
  }

  /** Takes the oldest due task waiting for this queue. */
  shiftReady(): TaskRecord | undefined {
    const next = this.readyTasks.values().next();
    if (next.done) return undefined;
    this.readyTasks.delete(next.value);
    return next.value;
  }

  get readyCount(): number {
    return this.readyTasks.size;
  }

  clearReady(): void {
    this.readyTasks.clear();
  }
}
