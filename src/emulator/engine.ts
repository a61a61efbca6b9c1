// The emulated service: queues and tasks in memory, the scheduler that decides when each task is
// due, rate limiting per queue, and the attempt lifecycle (dispatch, retry, give up).
import { status } from '@grpc/grpc-js';
import type { Clock } from './clock.js';
import { buildAttemptRequest } from './attempt-request.js';
import { httpStatusText, queueToMessage, rpcCodeForHttpStatus, taskToMessage } from './convert.js';
import { HttpDispatcher, type AttemptOutcome } from './dispatcher.js';
import {
  ApiError,
  failedPrecondition,
  invalidArgument,
  QUEUE_ALREADY_EXISTS,
  QUEUE_NAME_RECENTLY_USED,
  queueNotFound,
  TASK_ALREADY_EXISTS,
  TASK_TOO_LARGE,
  taskNotFound,
} from './errors.js';
import { QueueRecord, QueueWakeup, TaskRecord, type AttemptRecord } from './model.js';
import {
  formatLocationName,
  formatQueueName,
  generateTaskId,
  parseLocationName,
  parseQueueName,
  parseTaskName,
  type LocationName,
} from './names.js';
import type { OidcSigner } from './oidc.js';
import type { EmulatorLogger } from './options.js';
import type { QueueMessage, QueueStateName, TaskMessage, TaskViewName } from './proto-types.js';
import { applyQueueUpdate, defaultQueueConfig, queueConfigFrom } from './queue-config.js';
import { isThrottlingStatus, parseRetryAfterMs, retryDelayMs, shouldGiveUp } from './retry.js';
import { Scheduler } from './scheduler.js';
import { taskInputFrom } from './task-input.js';

export interface EngineSettings {
  clock: Clock;
  logger: EmulatorLogger;
  signer: OidcSigner;
  appEngineBaseUrl: URL | undefined;
  taskDedupWindowMs: number;
  queueNameReuseBlockMs: number;
  maxTaskSizeBytes: number;
  unlimitedRate: boolean;
  defaultLocation: LocationName;
}

export interface LocationMessage {
  name: string;
  locationId: string;
  displayName: string;
}

/** Cloud Tasks deletes tasks 31 days after creation, dispatched or not. */
const TASK_RETENTION_MS = 31 * 24 * 60 * 60 * 1000;
const MAX_TASKS_PAGE_SIZE = 1000;
const MAX_QUEUES_PAGE_SIZE = 9800;

type Scheduled = TaskRecord | QueueWakeup;

function encodePageToken(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64url');
}

function decodePageToken(token: string | undefined): string | undefined {
  if (!token) return undefined;
  const value = Buffer.from(token, 'base64url').toString('utf8');
  if (!value) throw invalidArgument('Invalid page token.');
  return value;
}

function pageSizeOf(requested: number | undefined, max: number): number {
  const size = requested ?? 0;
  if (size < 0) throw invalidArgument('page_size must not be negative.');
  return size === 0 ? max : Math.min(size, max);
}

/** ListQueues' filter: only "state: X", "state = X" and "state != X" are understood. */
function queueFilterFrom(filter: string | undefined): (queue: QueueRecord) => boolean {
  if (!filter || !filter.trim()) return () => true;
  const match = /^\s*state\s*(:|=|!=)\s*"?([A-Za-z_]+)"?\s*$/.exec(filter);
  if (!match) throw invalidArgument(`Unsupported filter "${filter}": the emulator understands "state: <STATE>".`);
  const wanted = match[2]!.toUpperCase() as QueueStateName;
  return match[1] === '!=' ? (queue) => queue.state !== wanted : (queue) => queue.state === wanted;
}

export class CloudTasksEngine {
  private readonly queues = new Map<string, QueueRecord>();
  /** Deleted queue names -> when they may be reused. */
  private readonly deletedQueues = new Map<string, number>();
  private readonly scheduler: Scheduler<Scheduled>;
  private readonly dispatcher: HttpDispatcher;
  private readonly dueQueues = new Set<QueueRecord>();
  private nextOrder = 0;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private stopped = false;

  constructor(private readonly settings: EngineSettings) {
    this.scheduler = new Scheduler<Scheduled>(
      settings.clock,
      (item) => this.onDue(item),
      () => this.pumpDueQueues(),
    );
    this.dispatcher = new HttpDispatcher(settings.clock);
  }

  private get now(): number {
    return this.settings.clock.now();
  }

  // ---- queues ----------------------------------------------------------------------------------

  createQueue(parent: string | undefined, message: QueueMessage | null | undefined): QueueMessage {
    const location = parseLocationName(parent);
    if (!message) throw invalidArgument('Queue is required.');
    const name = parseQueueName(message.name);
    if (name.project !== location.project || name.location !== location.location) {
      throw invalidArgument(`Queue.name "${message.name}" must be a queue of the parent "${parent}".`);
    }
    const fullName = formatQueueName(name);
    if (this.queues.has(fullName)) throw new ApiError(status.ALREADY_EXISTS, QUEUE_ALREADY_EXISTS);
    this.assertQueueNameReusable(fullName);
    const queue = new QueueRecord(name, fullName, queueConfigFrom(message), this.now);
    this.queues.set(fullName, queue);
    this.settings.logger.debug?.(`queue created: ${fullName}`);
    return queueToMessage(queue);
  }

  getQueue(name: string | undefined): QueueMessage {
    return queueToMessage(this.queueNamed(name));
  }

  listQueues(
    parent: string | undefined,
    filter: string | undefined,
    pageSize: number | undefined,
    pageToken: string | undefined,
  ): { queues: QueueMessage[]; nextPageToken: string } {
    const prefix = `${formatLocationName(parseLocationName(parent))}/queues/`;
    const size = pageSizeOf(pageSize, MAX_QUEUES_PAGE_SIZE);
    const matches = queueFilterFrom(filter);
    const after = decodePageToken(pageToken);
    const names = [...this.queues.keys()].filter((n) => n.startsWith(prefix) && (after === undefined || n > after)).sort();
    const page: QueueRecord[] = [];
    let nextPageToken = '';
    for (const name of names) {
      const queue = this.queues.get(name)!;
      if (!matches(queue)) continue;
      if (page.length === size) {
        nextPageToken = encodePageToken(page[page.length - 1]!.fullName);
        break;
      }
      page.push(queue);
    }
    return { queues: page.map(queueToMessage), nextPageToken };
  }

  /** UpdateQueue: updates the fields under `paths` (all when empty), creating the queue if missing. */
  updateQueue(message: QueueMessage | null | undefined, paths: readonly string[]): QueueMessage {
    if (!message?.name) throw invalidArgument('Queue.name is required.');
    const name = parseQueueName(message.name);
    const fullName = formatQueueName(name);
    const existing = this.queues.get(fullName);
    if (existing) {
      existing.reconfigure(applyQueueUpdate(existing.config, message, paths), this.now);
      this.pump(existing);
      return queueToMessage(existing);
    }
    this.assertQueueNameReusable(fullName);
    const queue = new QueueRecord(name, fullName, applyQueueUpdate(defaultQueueConfig(), message, paths), this.now);
    this.queues.set(fullName, queue);
    this.settings.logger.debug?.(`queue created by UpdateQueue: ${fullName}`);
    return queueToMessage(queue);
  }

  deleteQueue(name: string | undefined): void {
    const queue = this.queueNamed(name);
    for (const task of queue.tasks.values()) {
      task.state = 'gone';
      this.scheduler.cancel(task);
    }
    queue.tasks.clear();
    queue.clearReady();
    this.scheduler.cancel(queue.wakeup);
    this.queues.delete(queue.fullName);
    this.deletedQueues.set(queue.fullName, this.now + this.settings.queueNameReuseBlockMs);
    this.settings.logger.debug?.(`queue deleted: ${queue.fullName}`);
  }

  purgeQueue(name: string | undefined): QueueMessage {
    const queue = this.queueNamed(name);
    const now = this.now;
    for (const task of [...queue.tasks.values()]) this.removeTask(task, now);
    queue.purgeTime = now;
    return queueToMessage(queue);
  }

  pauseQueue(name: string | undefined): QueueMessage {
    const queue = this.queueNamed(name);
    queue.state = 'PAUSED';
    return queueToMessage(queue);
  }

  resumeQueue(name: string | undefined): QueueMessage {
    const queue = this.queueNamed(name);
    queue.state = 'RUNNING';
    this.pump(queue);
    return queueToMessage(queue);
  }

  // ---- tasks -----------------------------------------------------------------------------------

  createTask(
    parent: string | undefined,
    message: TaskMessage | null | undefined,
    view: TaskViewName | undefined,
    requestBytes: number,
  ): TaskMessage {
    const queue = this.queueNamed(parent);
    if (!message) throw invalidArgument('Task is required.');
    if (requestBytes > this.settings.maxTaskSizeBytes) throw invalidArgument(TASK_TOO_LARGE);
    const now = this.now;
    let taskId: string;
    if (message.name) {
      const taskName = parseTaskName(message.name);
      const taskQueue = formatQueueName(taskName);
      if (taskQueue !== queue.fullName) {
        throw invalidArgument(
          `The queue name from request ('${parent}') must be the same as the queue name in the named task ('${taskQueue}').`,
        );
      }
      taskId = taskName.taskId;
      if (queue.tasks.has(taskId) || this.isRecentlyGone(queue, taskId, now)) {
        throw new ApiError(status.ALREADY_EXISTS, TASK_ALREADY_EXISTS);
      }
    } else {
      do taskId = generateTaskId();
      while (queue.tasks.has(taskId) || queue.tombstones.has(taskId));
    }
    const input = taskInputFrom(message, now);
    const task = new TaskRecord(
      queue,
      taskId,
      this.nextOrder++,
      now,
      input.scheduleTime,
      input.dispatchDeadlineMs,
      input.target,
    );
    queue.tasks.set(taskId, task);
    // The reply shows the task as created, before any dispatch this call may start.
    const reply = taskToMessage(task, view);
    this.enqueue(task, input.scheduleTime);
    return reply;
  }

  getTask(name: string | undefined, view: TaskViewName | undefined): TaskMessage {
    return taskToMessage(this.taskNamed(name), view);
  }

  listTasks(
    parent: string | undefined,
    view: TaskViewName | undefined,
    pageSize: number | undefined,
    pageToken: string | undefined,
  ): { tasks: TaskMessage[]; nextPageToken: string } {
    const queue = this.queueNamed(parent);
    const size = pageSizeOf(pageSize, MAX_TASKS_PAGE_SIZE);
    const afterText = decodePageToken(pageToken);
    const after = afterText === undefined ? -1 : Number(afterText);
    if (Number.isNaN(after)) throw invalidArgument('Invalid page token.');
    const tasks: TaskMessage[] = [];
    let last: TaskRecord | undefined;
    let nextPageToken = '';
    // Map order is creation order, so the creation sequence is a stable cursor.
    for (const task of queue.tasks.values()) {
      if (task.order <= after) continue;
      if (tasks.length === size) {
        nextPageToken = encodePageToken(String(last!.order));
        break;
      }
      tasks.push(taskToMessage(task, view));
      last = task;
    }
    return { tasks, nextPageToken };
  }

  deleteTask(name: string | undefined): void {
    const task = this.taskNamed(name, false);
    this.removeTask(task, this.now);
    this.settings.logger.debug?.(`task deleted: ${task.queue.fullName}/tasks/${task.id}`);
  }

  /** RunTask: dispatches now, paused queue and rate limits notwithstanding; replies before the target answers. */
  runTask(name: string | undefined, view: TaskViewName | undefined): TaskMessage {
    const task = this.taskNamed(name, false);
    this.scheduler.cancel(task);
    task.queue.removeReady(task);
    task.dueAt = this.now;
    this.startAttempt(task);
    return taskToMessage(task, view);
  }

  // ---- locations -------------------------------------------------------------------------------

  listLocations(projectName: string | undefined): LocationMessage[] {
    const match = /^projects\/([^/]+)$/.exec(projectName ?? '');
    if (!match) throw invalidArgument('Name must be formatted: "projects/<PROJECT_ID>".');
    const project = match[1]!;
    const ids = new Set<string>([this.settings.defaultLocation.location]);
    for (const queue of this.queues.values()) if (queue.name.project === project) ids.add(queue.name.location);
    return [...ids].sort().map((id) => ({ name: `projects/${project}/locations/${id}`, locationId: id, displayName: id }));
  }

  getLocation(name: string | undefined): LocationMessage {
    const location = parseLocationName(name);
    return { name: formatLocationName(location), locationId: location.location, displayName: location.location };
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  idle(): Promise<void> {
    if (this.inFlight === 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.scheduler.stop();
    this.dispatcher.close();
    this.releaseIdleWaiters();
  }

  // ---- internals -------------------------------------------------------------------------------

  private queueNamed(name: string | undefined): QueueRecord {
    const queue = this.queues.get(formatQueueName(parseQueueName(name)));
    if (!queue) throw queueNotFound();
    return queue;
  }

  private taskNamed(name: string | undefined, sayIfRecentlyGone = true): TaskRecord {
    const taskName = parseTaskName(name);
    const queue = this.queues.get(formatQueueName(taskName));
    if (!queue) throw taskNotFound();
    const task = queue.tasks.get(taskName.taskId);
    if (task) return task;
    throw taskNotFound(sayIfRecentlyGone && this.isRecentlyGone(queue, taskName.taskId, this.now));
  }

  private assertQueueNameReusable(fullName: string): void {
    const blockedUntil = this.deletedQueues.get(fullName);
    if (blockedUntil === undefined) return;
    if (this.now < blockedUntil) throw failedPrecondition(QUEUE_NAME_RECENTLY_USED);
    this.deletedQueues.delete(fullName);
  }

  private isRecentlyGone(queue: QueueRecord, taskId: string, now: number): boolean {
    const blockedUntil = queue.tombstones.get(taskId);
    if (blockedUntil === undefined) return false;
    if (now < blockedUntil) return true;
    queue.tombstones.delete(taskId);
    return false;
  }

  /** Drops a task for good (done, given up, deleted or purged); its name stays taken for a while. */
  private removeTask(task: TaskRecord, now: number): void {
    const queue = task.queue;
    task.state = 'gone';
    this.scheduler.cancel(task);
    queue.removeReady(task);
    queue.tasks.delete(task.id);
    queue.tombstones.delete(task.id);
    queue.tombstones.set(task.id, now + this.settings.taskDedupWindowMs);
    // Oldest first: drop the expired ones from the front.
    for (const [id, blockedUntil] of queue.tombstones) {
      if (blockedUntil > now) break;
      queue.tombstones.delete(id);
    }
  }

  /** Puts a task in line for its schedule time: the heap if in the future, the queue's line if due. */
  private enqueue(task: TaskRecord, scheduleTime: number): void {
    task.dueAt = scheduleTime;
    if (scheduleTime <= this.now) {
      this.scheduler.cancel(task);
      task.queue.pushReady(task);
      this.pump(task.queue);
    } else {
      task.state = 'scheduled';
      this.scheduler.schedule(task, scheduleTime);
    }
  }

  private onDue(item: Scheduled): void {
    if (item instanceof QueueWakeup) {
      this.dueQueues.add(item.queue);
      return;
    }
    if (item.state !== 'scheduled') return;
    const now = this.now;
    if (now - item.createTime >= TASK_RETENTION_MS) {
      this.removeTask(item, now);
      this.settings.logger.info?.(`task ${item.id} reached the 31-day retention limit and was deleted`);
      return;
    }
    item.queue.pushReady(item);
    this.dueQueues.add(item.queue);
  }

  private pumpDueQueues(): void {
    for (const queue of this.dueQueues) this.pump(queue);
    this.dueQueues.clear();
  }

  /** Dispatches the queue's due tasks as far as its state, concurrency and tokens allow. */
  private pump(queue: QueueRecord): void {
    if (this.stopped || queue.state !== 'RUNNING' || this.queues.get(queue.fullName) !== queue) return;
    const now = this.now;
    while (queue.readyCount > 0) {
      if (queue.inFlight >= queue.config.rateLimits.maxConcurrentDispatches) return; // resumes on completion
      if (!this.settings.unlimitedRate && !queue.bucket.tryTake(now)) {
        const wait = queue.bucket.msUntilToken(now);
        const wakeAt = now + Math.max(1, wait);
        if (Number.isFinite(wait) && (!this.scheduler.isScheduled(queue.wakeup) || queue.wakeup.dueAt > wakeAt)) {
          this.scheduler.schedule(queue.wakeup, wakeAt);
        }
        return;
      }
      this.startAttempt(queue.shiftReady()!);
    }
  }

  private startAttempt(task: TaskRecord): void {
    const now = this.now;
    const queue = task.queue;
    const previous = task.lastAttempt;
    const retryCount = task.dispatchCount;
    task.state = 'running';
    task.inFlight++;
    task.dispatchCount++;
    if (task.firstDispatchTime < 0) task.firstDispatchTime = now;
    const attempt: AttemptRecord = { scheduleTime: task.dueAt, dispatchTime: now };
    task.lastAttempt = attempt;
    queue.inFlight++;
    this.inFlight++;

    const request = buildAttemptRequest(task, {
      retryCount,
      previous,
      now,
      signer: this.settings.signer,
      appEngineBaseUrl: this.settings.appEngineBaseUrl,
    });
    let outcome: Promise<AttemptOutcome>;
    let started: Promise<unknown>;
    if (typeof request === 'string') {
      outcome = Promise.resolve({ kind: 'error', message: request });
      started = outcome;
    } else {
      this.settings.logger.debug?.(`dispatching ${task.id} to ${request.url.href}`);
      const handle = this.dispatcher.send(request);
      outcome = handle.done;
      started = handle.started;
    }
    // A manual clock waits for the request to be sent, not for the target's answer.
    this.settings.clock.track?.(started);
    outcome
      .then((result) => this.finishAttempt(task, attempt, result))
      .catch((error: unknown) => this.settings.logger.error?.(`attempt bookkeeping failed: ${String(error)}`));
  }

  private finishAttempt(task: TaskRecord, attempt: AttemptRecord, outcome: AttemptOutcome): void {
    const queue = task.queue;
    this.inFlight--;
    queue.inFlight--;
    if (!this.stopped && task.state !== 'gone') this.settleAttempt(task, attempt, outcome);
    this.pump(queue);
    if (this.inFlight === 0) this.releaseIdleWaiters();
  }

  private settleAttempt(task: TaskRecord, attempt: AttemptRecord, outcome: AttemptOutcome): void {
    const now = this.now;
    task.inFlight--;
    attempt.responseTime = now;
    let throttled = false;
    let retryAfterMs: number | undefined;
    if (outcome.kind === 'response') {
      const code = outcome.httpStatus;
      task.responseCount++;
      attempt.httpStatus = code;
      attempt.statusCode = rpcCodeForHttpStatus(code);
      attempt.statusMessage = httpStatusText(code);
      if (code >= 200 && code < 300) {
        this.removeTask(task, now);
        this.settings.logger.debug?.(`task ${task.id} succeeded (${code})`);
        return;
      }
      if (code < 500) task.executionCount++;
      attempt.failureReason = `HTTP status ${code}`;
      throttled = isThrottlingStatus(code, task.target.kind === 'appEngine');
      retryAfterMs = parseRetryAfterMs(outcome.retryAfter, now);
    } else if (outcome.kind === 'deadline') {
      attempt.statusCode = status.DEADLINE_EXCEEDED;
      attempt.statusMessage = 'Deadline exceeded';
      attempt.failureReason = 'Deadline exceeded';
    } else {
      attempt.statusCode = status.UNAVAILABLE;
      attempt.statusMessage = outcome.message;
      attempt.failureReason = 'Connection failed';
      this.settings.logger.debug?.(`task ${task.id} could not be delivered: ${outcome.message}`);
    }

    // Another attempt (RunTask) still under way decides what happens next.
    if (task.inFlight > 0) return;
    const policy = task.queue.config.retry;
    if (shouldGiveUp(policy, task.dispatchCount, task.firstDispatchTime, now)) {
      this.removeTask(task, now);
      this.settings.logger.info?.(
        `task ${task.queue.fullName}/tasks/${task.id} given up after ${task.dispatchCount} attempt(s)`,
      );
      return;
    }
    this.enqueue(task, now + retryDelayMs(policy, task.dispatchCount, throttled, retryAfterMs));
  }

  private releaseIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
