// The emulated API: queues and tasks in memory, named, validated and reported as Cloud Tasks does.
// Delivery (scheduling, rate limits, attempts and retries) is the TaskRunner's.
import { status } from '@grpc/grpc-js';
import { queueToMessage, taskToMessage } from './convert.js';
import {
  ApiError,
  ENTITY_NOT_FOUND,
  failedPrecondition,
  invalidArgument,
  QUEUE_ALREADY_EXISTS,
  QUEUE_NAME_RECENTLY_USED,
  queueNotFound,
  TASK_ALREADY_EXISTS,
  TASK_TOO_LARGE,
  taskNotFound,
} from './errors.js';
import { IamPolicies, type DeniedPermissions, type PolicyMessage } from './iam.js';
import { QueueRecord, TaskRecord } from './model.js';
import { formatLocationName, formatQueueName, generateTaskId, parseLocationName, parseQueueName, parseTaskName, type LocationName } from './names.js';
import type { QueueMessage, QueueStateName, TaskMessage, TaskViewName } from './proto-types.js';
import { applyQueueUpdate, defaultQueueConfig, queueConfigFrom, validateQueueConfig, type QueueConfig } from './queue-config.js';
import { taskInputFrom } from './task-input.js';
import { TaskRunner, type RunnerSettings } from './task-runner.js';

export interface EngineSettings extends RunnerSettings {
  queueNameReuseBlockMs: number;
  maxTaskSizeBytes: number;
  defaultLocation: LocationName;
  deniedPermissions?: DeniedPermissions;
}

export interface LocationMessage {
  name: string;
  locationId: string;
  displayName: string;
}

const MAX_TASKS_PAGE_SIZE = 1000;
const MAX_QUEUES_PAGE_SIZE = 9800;

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
  private readonly runner: TaskRunner;
  private readonly iam: IamPolicies;
  private nextOrder = 0;

  constructor(private readonly settings: EngineSettings) {
    this.runner = new TaskRunner(settings);
    this.iam = new IamPolicies(settings.deniedPermissions);
  }

  private get now(): number {
    return this.settings.clock.now();
  }

  // ---- queues ----------------------------------------------------------------------------------

  createQueue(parent: string | undefined, message: QueueMessage | null | undefined): QueueMessage {
    let location: LocationName;
    try {
      location = parseLocationName(parent);
    } catch {
      // Recorded: Cloud Tasks answers a malformed parent as a resource the caller may not use.
      throw new ApiError(
        status.PERMISSION_DENIED,
        `The principal (user or service account) lacks IAM permission "cloudtasks.queues.create" for the resource "${parent ?? ''}" (or the resource may not exist).`,
      );
    }
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
      this.runner.pump(existing);
      return queueToMessage(existing);
    }
    this.assertQueueNameReusable(fullName);
    const queue = new QueueRecord(name, fullName, applyQueueUpdate(defaultQueueConfig(), message, paths), this.now);
    this.queues.set(fullName, queue);
    this.settings.logger.debug?.(`queue created by UpdateQueue: ${fullName}`);
    return queueToMessage(queue);
  }

  deleteQueue(name: string | undefined): void {
    const queue = this.queues.get(formatQueueName(parseQueueName(name)));
    // Recorded: DeleteQueue of a missing queue answers the generic message, not CreateTask's.
    if (!queue) throw new ApiError(status.NOT_FOUND, ENTITY_NOT_FOUND);
    this.runner.dropQueue(queue);
    this.iam.drop(queue.fullName);
    this.queues.delete(queue.fullName);
    this.deletedQueues.set(queue.fullName, this.now + this.settings.queueNameReuseBlockMs);
    this.settings.logger.debug?.(`queue deleted: ${queue.fullName}`);
  }

  purgeQueue(name: string | undefined): QueueMessage {
    const queue = this.queueNamed(name);
    for (const task of [...queue.tasks.values()]) this.runner.remove(task);
    queue.purgeTime = this.now;
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
    this.runner.pump(queue);
    return queueToMessage(queue);
  }

  /** Creates or replaces a queue from a queue file: every setting, the file's extras included. */
  defineQueue(name: string, config: QueueConfig): QueueMessage {
    const parsed = parseQueueName(name);
    const fullName = formatQueueName(parsed);
    validateQueueConfig(config);
    const existing = this.queues.get(fullName);
    if (existing) {
      existing.reconfigure(config, this.now);
      this.runner.pump(existing);
      return queueToMessage(existing);
    }
    this.deletedQueues.delete(fullName);
    const queue = new QueueRecord(parsed, fullName, config, this.now);
    this.queues.set(fullName, queue);
    return queueToMessage(queue);
  }

  /** True if the queue exists (the REST surface creates Firebase's queues on first use). */
  hasQueue(name: string): boolean {
    return this.queues.has(formatQueueName(parseQueueName(name)));
  }

  // ---- IAM -------------------------------------------------------------------------------------

  getIamPolicy(resource: string | undefined): PolicyMessage {
    return this.iam.get(this.queueNamed(resource).fullName);
  }

  setIamPolicy(resource: string | undefined, policy: PolicyMessage | null | undefined): PolicyMessage {
    return this.iam.set(this.queueNamed(resource).fullName, policy);
  }

  testIamPermissions(resource: string | undefined, permissions: string[] | undefined): string[] {
    return this.iam.testPermissions(this.queueNamed(resource).fullName, permissions);
  }

  // ---- tasks -----------------------------------------------------------------------------------

  createTask(parent: string | undefined, message: TaskMessage | null | undefined, view: TaskViewName | undefined, requestBytes: number): TaskMessage {
    const queue = this.queueNamed(parent);
    if (!message) throw invalidArgument('Task is required.');
    if (requestBytes > this.settings.maxTaskSizeBytes) throw invalidArgument(TASK_TOO_LARGE);
    const now = this.now;
    let taskId: string;
    if (message.name) {
      const taskName = parseTaskName(message.name);
      const taskQueue = formatQueueName(taskName);
      if (taskQueue !== queue.fullName) {
        throw invalidArgument(`The queue name from request ('${parent}') must be the same as the queue name in the named task ('${taskQueue}').`);
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
    const task = new TaskRecord(queue, taskId, this.nextOrder++, now, input.scheduleTime, input.dispatchDeadlineMs, input.target);
    queue.tasks.set(taskId, task);
    // The reply shows the task as created, before any dispatch this call may start.
    const reply = taskToMessage(task, view);
    this.runner.enqueue(task, input.scheduleTime);
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
    this.runner.remove(task);
    this.settings.logger.debug?.(`task deleted: ${task.queue.fullName}/tasks/${task.id}`);
  }

  /** RunTask: dispatches now, paused queue and rate limits notwithstanding; replies before the target answers. */
  runTask(name: string | undefined, view: TaskViewName | undefined): TaskMessage {
    const task = this.taskNamed(name, false);
    this.runner.runNow(task);
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
    return this.runner.idle();
  }

  stop(): void {
    this.runner.stop();
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
    if (task && !this.runner.expireIfTooOld(task, this.now)) return task;
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
}
