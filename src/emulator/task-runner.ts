// Delivery: when each task falls due, how fast each queue may dispatch, and what an attempt's
// outcome does to the task (done, retried after a backoff, or given up).
import { status } from '@grpc/grpc-js';
import type { Clock } from './clock.js';
import { buildAttemptRequest } from './attempt-request.js';
import { httpStatusText, rpcCodeForHttpStatus } from './convert.js';
import { HttpDispatcher, type AttemptOutcome } from './dispatcher.js';
import { QueueWakeup, type AttemptRecord, type QueueRecord, type TaskRecord } from './model.js';
import type { OidcSigner } from './oidc.js';
import type { EmulatorLogger } from './options.js';
import { isThrottlingStatus, parseRetryAfterMs, retryDelayMs, shouldGiveUp } from './retry.js';
import { Scheduler } from './scheduler.js';

export interface RunnerSettings {
  clock: Clock;
  logger: EmulatorLogger;
  signer: OidcSigner;
  appEngineBaseUrl: URL | undefined;
  /** "service" or "version.service" -> base URL, ahead of appEngineBaseUrl. */
  appEngineRoutes: ReadonlyMap<string, URL>;
  taskDedupWindowMs: number;
  unlimitedRate: boolean;
}

/** Cloud Tasks deletes tasks 31 days after creation, dispatched or not. */
const TASK_RETENTION_MS = 31 * 24 * 60 * 60 * 1000;

type Scheduled = TaskRecord | QueueWakeup;

export class TaskRunner {
  private readonly scheduler: Scheduler<Scheduled>;
  private readonly dispatcher: HttpDispatcher;
  private readonly dueQueues = new Set<QueueRecord>();
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private stopped = false;

  constructor(private readonly settings: RunnerSettings) {
    this.scheduler = new Scheduler<Scheduled>(
      settings.clock,
      (item) => this.onDue(item),
      () => this.pumpDueQueues(),
    );
    this.dispatcher = new HttpDispatcher(settings.clock);
  }

  /** Puts a task in line for `scheduleTime`: the heap if in the future, its queue's line if due. */
  enqueue(task: TaskRecord, scheduleTime: number): void {
    task.dueAt = scheduleTime;
    if (scheduleTime <= this.settings.clock.now()) {
      this.scheduler.cancel(task);
      task.queue.pushReady(task);
      this.pump(task.queue);
    } else {
      task.state = 'scheduled';
      this.scheduler.schedule(task, scheduleTime);
    }
  }

  /** RunTask: an attempt now, whatever the queue's state and limits. */
  runNow(task: TaskRecord): void {
    this.scheduler.cancel(task);
    task.queue.removeReady(task);
    task.dueAt = this.settings.clock.now();
    this.startAttempt(task, true);
  }

  /** Drops a task for good (done, given up, deleted or purged); its name stays taken for a while. */
  remove(task: TaskRecord): void {
    const now = this.settings.clock.now();
    const queue = task.queue;
    task.state = 'gone';
    this.scheduler.cancel(task);
    queue.removeReady(task);
    queue.tasks.delete(task.id);
    queue.tombstones.delete(task.id);
    queue.tombstones.set(task.id, now + (queue.config.taskDedupWindowMs ?? this.settings.taskDedupWindowMs));
    // Oldest first: drop the expired ones from the front.
    for (const [id, blockedUntil] of queue.tombstones) {
      if (blockedUntil > now) break;
      queue.tombstones.delete(id);
    }
  }

  /** Forgets a deleted queue's tasks; attempts under way finish unheard. */
  dropQueue(queue: QueueRecord): void {
    queue.deleted = true;
    for (const task of queue.tasks.values()) {
      task.state = 'gone';
      this.scheduler.cancel(task);
    }
    queue.tasks.clear();
    queue.clearReady();
    this.scheduler.cancel(queue.wakeup);
  }

  /** Dispatches the queue's due tasks as far as its state, concurrency and tokens allow. */
  pump(queue: QueueRecord): void {
    if (this.stopped || queue.deleted || queue.state !== 'RUNNING') return;
    const now = this.settings.clock.now();
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
      const task = queue.shiftReady()!;
      // A task that waited past its retention (on a paused queue, say) is deleted, not dispatched.
      if (this.expireIfTooOld(task, now)) {
        queue.bucket.giveBack();
        continue;
      }
      this.startAttempt(task);
    }
  }

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

  private onDue(item: Scheduled): void {
    if (item instanceof QueueWakeup) {
      this.dueQueues.add(item.queue);
      return;
    }
    if (item.state !== 'scheduled') return;
    if (this.expireIfTooOld(item, this.settings.clock.now())) return;
    item.queue.pushReady(item);
    this.dueQueues.add(item.queue);
  }

  /** Deletes the task if it reached Cloud Tasks' 31-day retention; true if it did. */
  expireIfTooOld(task: TaskRecord, now: number): boolean {
    if (task.state === 'running' || now - task.createTime < TASK_RETENTION_MS) return false;
    this.remove(task);
    this.settings.logger.info?.(`task ${task.id} reached the 31-day retention limit and was deleted`);
    return true;
  }

  private pumpDueQueues(): void {
    for (const queue of this.dueQueues) this.pump(queue);
    this.dueQueues.clear();
  }

  private startAttempt(task: TaskRecord, viaRunTask = false): void {
    const now = this.settings.clock.now();
    const queue = task.queue;
    const previous = task.lastAttempt;
    const retryCount = task.dispatchCount;
    task.state = 'running';
    task.inFlight++;
    task.dispatchCount++;
    if (task.firstDispatchTime < 0) task.firstDispatchTime = now;
    const attempt: AttemptRecord = { scheduleTime: task.dueAt, dispatchTime: now };
    if (viaRunTask) attempt.viaRunTask = true;
    task.lastAttempt = attempt;
    queue.inFlight++;
    this.inFlight++;

    const request = buildAttemptRequest(task, {
      retryCount,
      previous,
      now,
      signer: this.settings.signer,
      appEngineBaseUrl: this.appEngineBaseUrlFor(task),
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

  /** Where an App Engine task goes: its version.service or service route, else the base URL. */
  private appEngineBaseUrlFor(task: TaskRecord): URL | undefined {
    const routes = this.settings.appEngineRoutes;
    if (task.target.kind !== 'appEngine' || routes.size === 0) return this.settings.appEngineBaseUrl;
    const routing = task.queue.config.appEngineRoutingOverride ?? task.target.routing;
    const service = routing?.service || 'default';
    const version = routing?.version;
    return (version ? routes.get(`${version}.${service}`) : undefined) ?? routes.get(service) ?? this.settings.appEngineBaseUrl;
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
    const now = this.settings.clock.now();
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
        this.remove(task);
        this.settings.logger.debug?.(`task ${task.id} succeeded (${code})`);
        return;
      }
      if (code < 500) task.executionCount++;
      // Recorded against Cloud Tasks: X-CloudTasks-TaskRetryReason is present and empty after a 503 or 404.
      attempt.failureReason = '';
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
      this.remove(task);
      this.settings.logger.info?.(`task ${task.queue.fullName}/tasks/${task.id} given up after ${task.dispatchCount} attempt(s)`);
      return;
    }
    // Recorded: after a failed RunTask the delay counts from the call, not from the answer.
    const from = attempt.viaRunTask ? attempt.dispatchTime : now;
    this.enqueue(task, from + retryDelayMs(policy, task.dispatchCount, throttled, retryAfterMs));
  }

  private releaseIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
