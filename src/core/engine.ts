/**
 * The defer engine: defer (step 1 of ARCHITECTURE.md), the status API and drain; running one
 * delivery (steps 3-6) is delivery.ts. Over the store and transport interfaces only: framework,
 * backend and Google client free. The parts live by idea: defer-plan.ts (options -> record and
 * request), defer-sequence.ts (write, enqueue, undo), outbox.ts, task-actions.ts (cancel, rerun,
 * purge), drain.ts (settle log, wait, drain).
 */
import type { Codec } from './codec.js';
import { ENVELOPE_CONTENT_TYPE } from './envelope.js';
import { assertOptionKeys } from './option-keys.js';
import type { Logger } from './logger.js';
import type { TaskRecord } from './records.js';
import { TaskRegistry, type RegisteredTask, type TaskDefaults, type TaskFunction } from './registry.js';
import { DeliveryRunner, type Delivery, type DeliveryOutcome } from './delivery.js';
import { errorInfo, StoreCalls } from './store-calls.js';
import type { Stores, TaskPage, TaskQuery } from './stores.js';
import type { QueueTransport } from './transport.js';
import type { TaskCounters } from './counters.js';
import { deferMany, type DeferManyItem, type DeferManyOptions, type DeferManyResult } from './defer-many.js';
import type { TaskTelemetry } from './telemetry.js';
import {
  DEFER_OPTION_KEYS,
  planDefer,
  TASK_OPTION_KEYS,
  type DeferOptions,
  type DeferredTask,
  type EngineTarget,
  type InternalDeferOptions,
  type TaskInfo,
} from './defer-plan.js';
import { DeferSequence } from './defer-sequence.js';
import { OutboxRelay } from './outbox.js';
import { TaskActions } from './task-actions.js';
import { Reconciler } from './reconciler.js';
import { drain, SettleWatch, type DrainMark, type DrainOptions, type DrainResult, type SettledListener } from './drain.js';

export { ENVELOPE_CONTENT_TYPE };
export { outboxTaskName } from './defer-plan.js';
export type { DeferOptions, DeferredTask, EngineTarget, InternalDeferOptions, TaskInfo, DrainMark, DrainOptions, DrainResult };

/** What one sweep() did. */
export interface SweepResult {
  /** Outbox entries enqueued (their enqueue after commit never happened). */
  enqueued: number;
  /** Unfinished records with no Cloud Task left, enqueued again. */
  reenqueued: number;
  /** Unfinished records with no Cloud Task left and no attempts left, recorded failed (ABANDONED). */
  abandoned: number;
  /** Expired records removed (stores without native expiry). */
  expired: number;
}

export interface EngineOptions {
  stores: Stores;
  transport: () => Promise<QueueTransport>;
  codec: Codec;
  logger: Logger;
  target: () => EngineTarget;
  defaultQueue: string;
  /** Encoded arguments above this go to the PayloadStore. */
  inlineLimitBytes: number;
  retentionMs: number;
  /** How long a run's claim holds before another delivery may take it over. */
  leaseMs: number;
  /** The short lease renewed on a heartbeat while a run is alive (stores with renewLease); 0 = none. */
  heartbeatLeaseMs?: number;
  /** The queue's retryConfig.maxRetryDuration in ms: a failure after it is recorded failed. */
  queueMaxRetryMs?: (queue: string) => number | undefined;
  /** How long a delivery keeps retrying to claim its task while the store is unreachable (default 10 s). */
  acquireRetryMs?: number;
  /** How long to keep retrying to record a finished run while the store is unreachable (default 30 s). */
  settleRetryMs?: number;
  /** Per-minute counters of settled attempts (the console's totals and charts); optional. */
  counters?: TaskCounters;
  now: () => number;
  /**
   * The queue's own retry limit (retryConfig.maxAttempts of a configured queue): a task without
   * its own maxAttempts takes it, so its last attempt records it `failed` instead of leaving it
   * `retrying` after Cloud Tasks gave up.
   */
  queueMaxAttempts?: (queue: string) => number | undefined;
  /** Spans and metrics (src/otel); absent = none, at no cost. */
  telemetry?: TaskTelemetry;
}

export class DeferredEngine {
  readonly registry = new TaskRegistry();
  /** Every settle since start, so drain() also sees tasks that finished before it was called. */
  private readonly settles = new SettleWatch();
  private readonly queuesUsed = new Set<string>();
  /** The transport once resolved: defer() is hot, and awaiting the provider costs a few ticks. */
  private transport?: QueueTransport;
  private readonly calls: StoreCalls;
  private readonly runner: DeliveryRunner;
  private readonly outbox: OutboxRelay;
  private readonly sequence: DeferSequence;
  private readonly actions: TaskActions;
  private readonly reconciler: Reconciler;

  constructor(private readonly options: EngineOptions) {
    this.queuesUsed.add(options.defaultQueue);
    this.calls = new StoreCalls(options.stores.kind, options.logger);
    this.runner = new DeliveryRunner({
      ...options,
      registry: this.registry,
      calls: this.calls,
      onSettled: (record) => this.emitSettled(record),
    });
    const transport = (): Promise<QueueTransport> => options.transport();
    this.outbox = new OutboxRelay({ state: options.stores.state, calls: this.calls, logger: options.logger, transport, now: options.now });
    this.sequence = new DeferSequence({
      stores: options.stores,
      calls: this.calls,
      outbox: this.outbox,
      resolvedTransport: () => this.transport,
      transport: async () => (this.transport = await options.transport()),
      now: options.now,
      info: (record, flags) => this.info(record, flags),
      getTask: (id) => this.getTask(id),
      queueUsed: (queue) => this.queuesUsed.add(queue),
    });
    this.reconciler = new Reconciler({
      stores: options.stores,
      calls: this.calls,
      logger: options.logger,
      transport,
      target: options.target,
      now: options.now,
      queueMaxRetryMs: options.queueMaxRetryMs,
      emitSettled: (record) => this.emitSettled(record),
    });
    this.actions = new TaskActions({
      stores: options.stores,
      calls: this.calls,
      codec: options.codec,
      now: options.now,
      transport,
      defer: (taskName, args, deferOptions) => this.defer(taskName, args, deferOptions),
      getTask: (id) => this.getTask(id),
      listTasks: (query) => this.listTasks(query),
      emitSettled: (record) => this.emitSettled(record),
    });
  }

  get stores(): Stores {
    return this.options.stores;
  }

  get codec(): Codec {
    return this.options.codec;
  }

  get counters(): TaskCounters | undefined {
    return this.options.counters;
  }

  /** Register a function under a stable name and get a typed handle to defer it. */
  task<A extends unknown[]>(name: string, fn: (...args: A) => unknown, defaults: TaskDefaults = {}): DeferredTask<A> {
    assertOptionKeys('task()', defaults, TASK_OPTION_KEYS);
    const registered = this.registry.register(name, fn as TaskFunction, defaults);
    if (defaults.queue) this.queuesUsed.add(defaults.queue);
    const handle: DeferredTask<A> = {
      name: registered.name,
      fn,
      defer: (...args: A) => this.defer(handle, args),
      with: (options: DeferOptions) => ({ defer: (...args: A) => this.defer(handle, args, options) }),
    };
    return handle;
  }

  /** Defer a registered task (handle, function or name) with its arguments. */
  defer<A extends unknown[]>(task: DeferredTask<A> | ((...args: A) => unknown) | string, args: A, options: DeferOptions = {}): Promise<TaskInfo> {
    try {
      assertOptionKeys('defer()', options, DEFER_OPTION_KEYS);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.deferWith(task, args, options, {});
  }

  /** Defer one task many times with bounded concurrency; one result (task or error) per item, in order. */
  deferMany<A extends unknown[]>(
    task: DeferredTask<A> | ((...args: A) => unknown) | string,
    items: readonly DeferManyItem<A>[],
    options?: DeferManyOptions,
  ): Promise<DeferManyResult[]> {
    return deferMany(this, task, items, options);
  }

  /**
   * defer() plus what library features (iteration) need: a fixed record id, and the record's
   * iteration and shard. With `idempotent`, a record that already exists under `id` is enqueued
   * again under its deterministic Cloud Tasks name instead of failing, so a retried caller can
   * finish a defer it started; the execution guard keeps it to one run.
   */
  async deferWith<A extends unknown[]>(
    task: DeferredTask<A> | ((...args: A) => unknown) | string,
    args: A,
    options: DeferOptions,
    internal: InternalDeferOptions,
  ): Promise<TaskInfo> {
    const telemetry = this.options.telemetry;
    if (!telemetry) return this.deferTraced(task, args, options, internal);
    const registered = this.registry.resolve(task);
    const labels = { taskName: registered.name, queue: options.queue ?? registered.defaults.queue ?? this.options.defaultQueue };
    return telemetry.deferSpan(labels, async (inject) => {
      const info = await this.deferTraced(task, args, options, internal, inject);
      if (!info.duplicate) telemetry.deferred(labels);
      return info;
    });
  }

  private async deferTraced<A extends unknown[]>(
    task: DeferredTask<A> | ((...args: A) => unknown) | string,
    args: A,
    options: DeferOptions,
    internal: InternalDeferOptions,
    injectTrace?: (headers: Record<string, string>) => void,
  ): Promise<TaskInfo> {
    const registered = this.registry.resolve(task);
    const plan = planDefer(this.options, registered, args, options, internal, injectTrace);
    return this.sequence.run(plan, options, internal);
  }

  /**
   * Enqueue the outbox entries older than `graceMs` whose enqueue never happened (the process
   * died between commit and enqueue). Deterministic task names make a race with the original harmless.
   */
  sweepOutbox(options: { graceMs?: number; limit?: number } = {}): Promise<{ enqueued: number }> {
    return this.outbox.sweep(options);
  }

  /**
   * Housekeeping for a scheduler: enqueue stranded outbox entries, reconcile unfinished records
   * with no Cloud Task left (reconciler.ts: enqueue again, or record failed ABANDONED), and let
   * stores without native expiry remove expired records in one bounded batch.
   */
  async sweep(options: { graceMs?: number; limit?: number } = {}): Promise<SweepResult> {
    const { enqueued } = await this.sweepOutbox(options);
    const { reenqueued, abandoned } = await this.reconciler.run(options);
    const { stores } = this.options;
    const expired = stores.sweepExpired ? await this.calls.call(() => stores.sweepExpired!(options.limit ?? 500)) : 0;
    return { enqueued, reenqueued, abandoned, expired };
  }

  private info(record: TaskRecord, flags: { duplicate: boolean; pendingCommit?: boolean; cloudTaskName?: string }): TaskInfo {
    // Built field by field: defer() is hot, and conditional spreads cost a copy each.
    const id = record.id;
    const info: TaskInfo = {
      id,
      taskName: record.taskName,
      queue: record.queue,
      eta: new Date(record.eta),
      status: record.status,
      duplicate: flags.duplicate,
      pendingCommit: flags.pendingCommit ?? false,
      wait: (waitOptions) => this.waitFor(id, waitOptions),
    };
    if (record.reference !== undefined) info.reference = record.reference;
    const cloudTaskName = flags.cloudTaskName ?? record.cloudTaskName;
    if (cloudTaskName !== undefined) info.cloudTaskName = cloudTaskName;
    return info;
  }

  // ---- status API -------------------------------------------------------------------------

  getTask(id: string): Promise<TaskRecord | undefined> {
    return this.calls.call(() => this.options.stores.state.getTask(id));
  }

  findTask(query: { reference: string }): Promise<TaskRecord | undefined> {
    return this.calls.call(() => this.options.stores.state.findByReference(query.reference));
  }

  listTasks(query: TaskQuery = {}): Promise<TaskPage> {
    return this.calls.call(() => this.options.stores.state.listTasks(query));
  }

  /** Cancel a task that has not run yet: it is acknowledged without running when delivered. */
  cancel(id: string): Promise<TaskRecord | undefined> {
    return this.actions.cancel(id);
  }

  /**
   * Defer a finished task again with the same arguments (a new task; its reference must be free).
   * Refused while the task is unfinished, and for large payloads already deleted after success.
   */
  rerun(id: string): Promise<TaskInfo> {
    return this.actions.rerun(id);
  }

  /**
   * Purge a queue: Cloud Tasks drops its tasks, and their records are marked cancelled (which
   * frees their references). Returns how many records were marked.
   */
  purgeQueue(queue: string): Promise<{ marked: number }> {
    return this.actions.purgeQueue(queue);
  }

  /** Resolve with the record once the task has finished. */
  waitFor(id: string, options: { timeoutMs?: number } = {}): Promise<TaskRecord> {
    return this.settles.waitFor((taskId) => this.getTask(taskId), id, options);
  }

  /** Forget the resolved transport (it was closed); the next defer asks the provider again. */
  forgetTransport(): void {
    this.transport = undefined;
  }

  onSettled(listener: SettledListener): () => void {
    this.settles.listeners.add(listener);
    return () => this.settles.listeners.delete(listener);
  }

  /** Mark the settle log now: drain({ since: mark }) counts only tasks settled after it. */
  mark(): DrainMark {
    return this.settles.log.mark();
  }

  private emitSettled(record: TaskRecord): void {
    this.settles.emit(record);
  }

  /**
   * Tests and scripts: run until every queue this engine uses is empty and no run is in flight.
   * Tasks scheduled later (or backing off) are dispatched now with RunTask unless asked not to.
   */
  drain(options: DrainOptions = {}): Promise<DrainResult> {
    return drain(
      { transport: () => this.options.transport(), queues: () => this.queuesUsed, inFlight: () => this.runner.inFlight, log: this.settles.log },
      options,
    );
  }

  // ---- running a delivery -------------------------------------------------------------------

  /** Steps 3-6 of ARCHITECTURE.md for one authenticated delivery. Never throws. */
  run(delivery: Delivery): Promise<DeliveryOutcome> {
    return this.runner.run(delivery);
  }

  /** Graceful shutdown of the runs in this process (see DeliveryRunner.shutdown). */
  shutdown(graceMs: number): Promise<{ finished: number; released: number }> {
    return this.runner.shutdown(graceMs);
  }

  /** Take deliveries again after shutdown(). */
  resumeDeliveries(): void {
    this.runner.resume();
  }

  /** Queues defers have used, plus the default. */
  queues(): string[] {
    return [...this.queuesUsed];
  }

  addQueue(name: string): void {
    this.queuesUsed.add(name);
  }
}

export type { RegisteredTask, Delivery, DeliveryOutcome };
export { errorInfo };
