/**
 * The defer engine: defer (step 1 of ARCHITECTURE.md), the status API and drain; running one
 * delivery (steps 3-6) is delivery.ts. Over the store and transport interfaces only: framework,
 * backend and Google client free.
 */
import { createHash } from 'node:crypto';
import type { Codec } from './codec.js';
import { ENVELOPE_CONTENT_TYPE, encodeEnvelope } from './envelope.js';
import { CloudDeferError, DuplicateTaskError } from './errors.js';
import { assertOptionKeys } from './option-keys.js';
import type { Logger } from './logger.js';
import { isFinished, PENDING_STATUSES, type TaskRecord, type TaskStatus } from './records.js';
import { TaskRegistry, type RegisteredTask, type TaskDefaults, type TaskFunction } from './registry.js';
import { DeliveryRunner, type Delivery, type DeliveryOutcome } from './delivery.js';
import { errorInfo, StoreCalls, randomId } from './store-calls.js';
import type { OutboxEntry, Stores, TaskPage, TaskQuery } from './stores.js';
import { QUEUE_ID, type EnqueueRequest, type QueueTarget, type QueueTransport } from './transport.js';
import type { TaskCounters } from './counters.js';
import { deferMany, enqueueWithRetry, type DeferManyItem, type DeferManyOptions, type DeferManyResult, type EnqueueRetry } from './defer-many.js';
import type { TaskTelemetry } from './telemetry.js';

const DAY_MS = 86_400_000;
const MAX_SCHEDULE_AHEAD_MS = 30 * DAY_MS;
const CLOUD_TASK_ID = /^[A-Za-z0-9_-]{1,500}$/;
export { ENVELOPE_CONTENT_TYPE };

export interface DeferOptions {
  /** Cloud Tasks queue id. Default: the task's queue, else the engine's default queue. */
  queue?: string;
  /** When to run (Date or epoch ms). Missing or past = now; at most 30 days ahead. */
  eta?: Date | number;
  /** Seconds from now; wins over `eta`. */
  countdown?: number;
  /** Cloud Tasks task id: a second task with this name is refused for about an hour. */
  name?: string;
  /** Duplicate prevention key: while the task holding it is unfinished (and before `uniqueUntil`), another defer returns it. */
  reference?: string;
  uniqueUntil?: Date | number;
  /** With a reference already held: return the existing task (default) or throw DuplicateTaskError. */
  onDuplicate?: 'return' | 'throw';
  /** App Engine routing; any of these sends the task to an App Engine target. `version: 'default'` means no version. */
  service?: string;
  version?: string;
  instance?: string;
  /** HTTP target overrides. */
  url?: string;
  serviceAccountEmail?: string;
  audience?: string;
  /** Seconds Cloud Tasks waits for the handler (HTTP 15-1800, App Engine 15-86415). */
  dispatchDeadline?: number;
  /** Attempts before the task is recorded failed and acknowledged (counts the first). */
  maxAttempts?: number;
  /** A backend transaction (memory, Redis MULTI, Datastore, Firestore): enqueue only after it commits. */
  transaction?: unknown;
}

/** Typed against the interfaces, so a new option must be listed; unknown keys are refused. */
const deferKeys: Record<keyof DeferOptions, true> = {
  queue: true,
  eta: true,
  countdown: true,
  name: true,
  reference: true,
  uniqueUntil: true,
  onDuplicate: true,
  service: true,
  version: true,
  instance: true,
  url: true,
  serviceAccountEmail: true,
  audience: true,
  dispatchDeadline: true,
  maxAttempts: true,
  transaction: true,
};
const DEFER_OPTION_KEYS = Object.keys(deferKeys);
const TASK_OPTION_KEYS = Object.keys({ queue: true, maxAttempts: true, aliases: true } satisfies Record<keyof TaskDefaults, true>);

export interface TaskInfo {
  id: string;
  taskName: string;
  queue: string;
  eta: Date;
  reference?: string;
  /** Full Cloud Tasks name when known (named tasks, or returned by CreateTask). */
  cloudTaskName?: string;
  status: TaskStatus;
  /** True when a defer with a held reference returned the existing task instead. */
  duplicate: boolean;
  /** True when the enqueue waits for a transaction to commit. */
  pendingCommit: boolean;
  /** Resolves with the record once the task has finished (succeeded, failed or cancelled). */
  wait(options?: { timeoutMs?: number }): Promise<TaskRecord>;
}

export interface DeferredTask<A extends unknown[]> {
  readonly name: string;
  readonly fn: (...args: A) => unknown;
  defer(...args: A): Promise<TaskInfo>;
  /** The same task with options applied to each defer. */
  with(options: DeferOptions): { defer(...args: A): Promise<TaskInfo> };
}

/** Options only the library itself uses (see deferWith). */
export interface InternalDeferOptions {
  id?: string;
  idempotent?: boolean;
  iterationId?: string;
  shardIndex?: number;
  /** deferMany: retry transient enqueue errors (the task then gets a deterministic Cloud Tasks name). */
  enqueueRetry?: EnqueueRetry;
}

export interface EngineTarget {
  /** Where HTTP-target tasks are sent (the handler URL). */
  http?: { url: string | (() => string); serviceAccountEmail?: string; audience?: string };
  /** Used when the default target is App Engine, or when a defer sets App Engine routing. */
  appEngine?: { relativeUri: string; service?: string; version?: string; instance?: string };
  /** Which of the two plain defers use. */
  default: 'http' | 'appEngine';
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

export interface DrainOptions {
  timeoutMs?: number;
  /** Dispatch tasks scheduled in the future (and those waiting out a backoff) now. Default true. */
  runScheduled?: boolean;
  /** Reject when a counted task ended failed (before or during the call). Default false. */
  throwOnFailure?: boolean;
  /** Count only tasks settled after this mark (from engine.mark()). Default: since the engine started. */
  since?: DrainMark;
}

/** A point in this engine's settle log; drain({ since }) counts what settled after it. */
export interface DrainMark {
  readonly succeeded: number;
  readonly failed: number;
}

export interface DrainResult {
  succeeded: number;
  failed: TaskRecord[];
}

type SettledListener = (record: TaskRecord) => void;

/** A Cloud Tasks task id derived from the record id, so a re-enqueue by the sweeper is de-duplicated. */
export function outboxTaskName(taskId: string): string {
  return `cd-${createHash('sha256').update(taskId).digest('hex').slice(0, 32)}`;
}

function toMs(value: Date | number, option: string): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new CloudDeferError('INVALID_OPTION', `${option} must be a valid Date or epoch milliseconds.`);
  }
  return ms;
}

export class DeferredEngine {
  readonly registry = new TaskRegistry();
  private readonly settledListeners = new Set<SettledListener>();
  /** Every settle since start, so drain() also sees tasks that finished before it was called. */
  private readonly settleLog = new SettleLog();
  private readonly queuesUsed = new Set<string>();
  /** The transport once resolved: defer() is hot, and awaiting the provider costs a few ticks. */
  private transport?: QueueTransport;
  private readonly calls: StoreCalls;
  private readonly runner: DeliveryRunner;

  constructor(private readonly options: EngineOptions) {
    this.queuesUsed.add(options.defaultQueue);
    this.calls = new StoreCalls(options.stores.kind, options.logger);
    this.runner = new DeliveryRunner({
      ...options,
      registry: this.registry,
      calls: this.calls,
      onSettled: (record) => this.emitSettled(record),
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
    if (!Array.isArray(args)) {
      throw new CloudDeferError('INVALID_OPTION', `defer(${registered.name}, args) needs the arguments as an array.`);
    }
    const argsBytes = this.options.codec.encodeArgs(args);
    const now = this.options.now();
    const eta = this.etaOf(options, now);
    const queue = options.queue ?? registered.defaults.queue ?? this.options.defaultQueue;
    this.validate(options, queue);
    const state = this.options.stores.state;
    const id = internal.id ?? state.newTaskId?.(options.reference) ?? randomId();
    const stored = argsBytes.byteLength > this.options.inlineLimitBytes;
    const argsText = stored ? undefined : Buffer.from(argsBytes.buffer, argsBytes.byteOffset, argsBytes.byteLength).toString('utf8');
    const body = encodeEnvelope({ task: registered.name, id, ...(argsText === undefined ? { payloadRef: id } : { argsText }) });
    const maxAttempts = options.maxAttempts ?? registered.defaults.maxAttempts ?? this.options.queueMaxAttempts?.(queue);
    const uniqueUntil = options.uniqueUntil === undefined ? undefined : toMs(options.uniqueUntil, 'uniqueUntil');
    const expiresAt = Math.max(eta, now) + this.options.retentionMs;
    const deterministic = options.transaction !== undefined || internal.idempotent === true || internal.enqueueRetry !== undefined;
    const cloudTaskId = options.name ?? (deterministic ? outboxTaskName(id) : undefined);
    const record: TaskRecord = {
      id,
      taskName: registered.name,
      queue,
      status: 'queued',
      createdAt: now,
      updatedAt: now,
      eta,
      attempts: 0,
      executionCount: 0,
      payloadSize: argsBytes.byteLength,
      history: [],
      version: 1,
      expiresAt,
      ...(options.reference !== undefined ? { reference: options.reference } : {}),
      ...(uniqueUntil !== undefined ? { uniqueUntil } : {}),
      ...(maxAttempts !== undefined ? { maxAttempts } : {}),
      ...(argsText === undefined ? { payloadRef: id } : { argsJson: argsText }),
      ...(internal.iterationId !== undefined ? { iterationId: internal.iterationId } : {}),
      ...(internal.shardIndex !== undefined ? { shardIndex: internal.shardIndex } : {}),
    };
    const request: EnqueueRequest = {
      queue,
      ...(cloudTaskId ? { taskId: cloudTaskId } : {}),
      ...(eta > now ? { scheduleTime: eta } : {}),
      ...(options.dispatchDeadline !== undefined ? { dispatchDeadlineMs: options.dispatchDeadline * 1000 } : {}),
      // A view, not a copy: encodeEnvelope's bytes are only read here.
      bodyBase64: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64'),
      headers: { 'Content-Type': ENVELOPE_CONTENT_TYPE },
      target: this.targetOf(options),
    };
    injectTrace?.(request.headers);
    const payloadTtl = expiresAt - now;

    if (options.transaction !== undefined) {
      return this.deferInTransaction(options.transaction, record, request, stored ? argsBytes : undefined, payloadTtl);
    }

    if (stored) await this.calls.call(() => this.options.stores.payloads.put(id, argsBytes, payloadTtl));
    let created;
    try {
      created = await this.calls.call(() => state.createTask(record, now));
    } catch (err) {
      if (internal.idempotent && err instanceof CloudDeferError && err.code === 'TASK_ALREADY_EXISTS') {
        return this.reenqueue(record, request);
      }
      if (stored) await this.calls.bestEffort(() => this.options.stores.payloads.delete(id));
      throw err;
    }
    if (!created.created) {
      if (stored) await this.calls.bestEffort(() => this.options.stores.payloads.delete(id));
      if (options.onDuplicate === 'throw') throw new DuplicateTaskError(options.reference ?? '', created.existing.id);
      return this.info(created.existing, { duplicate: true });
    }
    let cloudTaskName: string;
    try {
      const transport = this.transport ?? (this.transport = await this.options.transport());
      cloudTaskName = (internal.enqueueRetry ? await enqueueWithRetry(transport, request, internal.enqueueRetry) : await transport.enqueue(request)).name;
    } catch (err) {
      await this.undoDefer(record, err);
      throw err;
    }
    this.queuesUsed.add(queue);
    return this.info({ ...record, cloudTaskName }, { duplicate: false });
  }

  /** Finish an idempotent defer whose record exists: enqueue under the same name; a clash means it is queued. */
  private async reenqueue(record: TaskRecord, request: EnqueueRequest): Promise<TaskInfo> {
    const existing = (await this.getTask(record.id)) ?? record;
    if (!isFinished(existing.status)) {
      const transport = await this.options.transport();
      try {
        await transport.enqueue(request);
      } catch (err) {
        if (!(err instanceof CloudDeferError && err.code === 'TASK_ALREADY_EXISTS')) throw err;
      }
    }
    return this.info(existing, { duplicate: true });
  }

  private async deferInTransaction(
    transaction: unknown,
    record: TaskRecord,
    request: EnqueueRequest,
    payload: Uint8Array | undefined,
    payloadTtl: number,
  ): Promise<TaskInfo> {
    const hook = this.options.stores.transactions.find((h) => h.accepts(transaction));
    if (!hook) {
      const kinds = this.options.stores.transactions.map((h) => h.name).join(', ') || 'none';
      throw new CloudDeferError(
        'INVALID_OPTION',
        `The transaction passed to defer() is not one the ${this.options.stores.kind} stores can join (they accept: ${kinds}). Pass a transaction of the store you configured.`,
      );
    }
    const outbox: OutboxEntry = { taskId: record.id, createdAt: record.createdAt, request };
    await hook.stage(transaction, { record, outbox, ...(payload ? { payload: { id: record.id, data: payload, ttlMs: payloadTtl } } : {}) }, () =>
      this.enqueueOutboxEntry(outbox),
    );
    this.queuesUsed.add(record.queue);
    return this.info(record, { duplicate: false, pendingCommit: true });
  }

  /** Enqueue an outbox entry under its deterministic name and forget it; a name clash means it is already queued. */
  private async enqueueOutboxEntry(entry: OutboxEntry): Promise<void> {
    const transport = await this.options.transport();
    try {
      await transport.enqueue(entry.request);
    } catch (err) {
      if (!(err instanceof CloudDeferError && err.code === 'TASK_ALREADY_EXISTS')) {
        this.options.logger.error('enqueue after commit failed; sweepOutbox() will retry it', {
          taskId: entry.taskId,
          queue: entry.request.queue,
          error: errorInfo(err),
        });
        return;
      }
    }
    await this.calls.bestEffort(() => this.options.stores.state.removeOutbox(entry.taskId));
  }

  /**
   * Enqueue the outbox entries older than `graceMs` whose enqueue never happened (the process
   * died between commit and enqueue). Deterministic task names make a race with the original harmless.
   */
  async sweepOutbox(options: { graceMs?: number; limit?: number } = {}): Promise<{ enqueued: number }> {
    // listOutbox's bound is exclusive: +1 so that graceMs 0 includes entries made this millisecond.
    const cutoff = this.options.now() - (options.graceMs ?? 60_000) + 1;
    const entries = await this.calls.call(() => this.options.stores.state.listOutbox(cutoff, options.limit ?? 500));
    for (const entry of entries) await this.enqueueOutboxEntry(entry);
    return { enqueued: entries.length };
  }

  /**
   * Housekeeping for a scheduler: enqueue stranded outbox entries, and let stores without native
   * expiry remove expired records in one bounded batch.
   */
  async sweep(options: { graceMs?: number; limit?: number } = {}): Promise<{ enqueued: number; expired: number }> {
    const { enqueued } = await this.sweepOutbox(options);
    const { stores } = this.options;
    const expired = stores.sweepExpired ? await this.calls.call(() => stores.sweepExpired!(options.limit ?? 500)) : 0;
    return { enqueued, expired };
  }

  private async undoDefer(record: TaskRecord, err: unknown): Promise<void> {
    const { stores } = this.options;
    if (record.payloadRef) await this.calls.bestEffort(() => stores.payloads.delete(record.id));
    if (err instanceof CloudDeferError && err.code === 'TASK_ALREADY_EXISTS') {
      // The named task exists already: this defer made nothing, so it leaves nothing.
      await this.calls.bestEffort(() => stores.state.deleteTask(record.id));
      return;
    }
    await this.calls.bestEffort(() => stores.state.transition(record.id, ['queued'], 'failed', { lastError: errorInfo(err) }, this.options.now()));
  }

  private etaOf(options: DeferOptions, now: number): number {
    if (options.countdown !== undefined) {
      if (typeof options.countdown !== 'number' || !Number.isFinite(options.countdown) || options.countdown < 0) {
        throw new CloudDeferError('INVALID_OPTION', 'countdown must be a number of seconds >= 0.');
      }
      return now + options.countdown * 1000;
    }
    const eta = options.eta === undefined ? now : toMs(options.eta, 'eta');
    if (eta - now > MAX_SCHEDULE_AHEAD_MS) {
      throw new CloudDeferError('INVALID_OPTION', 'eta/countdown may be at most 30 days ahead (a Cloud Tasks limit).');
    }
    return Math.max(eta, now);
  }

  private validate(options: DeferOptions, queue: string): void {
    if (!QUEUE_ID.test(queue)) {
      throw new CloudDeferError('INVALID_OPTION', `Queue "${queue}" is not a valid Cloud Tasks queue id: 1-100 letters, digits or hyphens.`);
    }
    if (options.name !== undefined && !CLOUD_TASK_ID.test(options.name)) {
      throw new CloudDeferError(
        'INVALID_OPTION',
        `Task name "${options.name}" is not a valid Cloud Tasks task id: 1-500 letters, digits, '_' or '-'. Hash longer keys.`,
      );
    }
    if (options.maxAttempts !== undefined && !(Number.isInteger(options.maxAttempts) && (options.maxAttempts >= 1 || options.maxAttempts === -1))) {
      throw new CloudDeferError('INVALID_OPTION', 'maxAttempts must be a whole number >= 1, or -1 for unlimited.');
    }
    if (options.reference !== undefined && (typeof options.reference !== 'string' || options.reference.length === 0 || options.reference.length > 500)) {
      throw new CloudDeferError('INVALID_OPTION', 'reference must be a non-empty string of at most 500 characters.');
    }
    if (options.uniqueUntil !== undefined && options.reference === undefined) {
      throw new CloudDeferError('INVALID_OPTION', 'uniqueUntil only makes sense with a reference; add { reference }.');
    }
    if (options.dispatchDeadline !== undefined) {
      const appEngine = this.isAppEngine(options);
      const [min, max] = appEngine ? [15, 86_415] : [15, 1_800];
      if (!(typeof options.dispatchDeadline === 'number' && options.dispatchDeadline >= min && options.dispatchDeadline <= max)) {
        throw new CloudDeferError('INVALID_OPTION', `dispatchDeadline must be ${min}-${max} seconds for ${appEngine ? 'App Engine' : 'HTTP'} targets.`);
      }
    }
  }

  private isAppEngine(options: DeferOptions): boolean {
    if (options.service !== undefined || options.version !== undefined || options.instance !== undefined) return true;
    if (options.url !== undefined) return false;
    return this.options.target().default === 'appEngine';
  }

  private targetOf(options: DeferOptions): QueueTarget {
    const target = this.options.target();
    if (this.isAppEngine(options)) {
      const base = target.appEngine ?? { relativeUri: '/_ah/queue/deferred' };
      const version = options.version ?? base.version;
      const service = options.service ?? base.service;
      const instance = options.instance ?? base.instance;
      return {
        kind: 'appEngine',
        relativeUri: base.relativeUri,
        ...(service ? { service } : {}),
        // djangae's rule: version "default" means "leave the version out".
        ...(version && version !== 'default' ? { version } : {}),
        ...(instance ? { instance } : {}),
      };
    }
    const http = target.http;
    const url = options.url ?? (http ? (typeof http.url === 'function' ? http.url() : http.url) : undefined);
    if (!url) {
      throw new CloudDeferError('INVALID_OPTION', 'No HTTP target URL is configured: pass target: { url } to createDeferred() or url to defer().');
    }
    const serviceAccountEmail = options.serviceAccountEmail ?? http?.serviceAccountEmail;
    const audience = options.audience ?? http?.audience;
    return {
      kind: 'http',
      url,
      ...(serviceAccountEmail ? { oidc: { serviceAccountEmail, ...(audience ? { audience } : {}) } } : {}),
    };
  }

  private info(record: TaskRecord, flags: { duplicate: boolean; pendingCommit?: boolean }): TaskInfo {
    return {
      id: record.id,
      taskName: record.taskName,
      queue: record.queue,
      eta: new Date(record.eta),
      status: record.status,
      duplicate: flags.duplicate,
      pendingCommit: flags.pendingCommit ?? false,
      ...(record.reference !== undefined ? { reference: record.reference } : {}),
      ...(record.cloudTaskName !== undefined ? { cloudTaskName: record.cloudTaskName } : {}),
      wait: (waitOptions) => this.waitFor(record.id, waitOptions),
    };
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
  async cancel(id: string): Promise<TaskRecord | undefined> {
    const record = await this.calls.call(() => this.options.stores.state.transition(id, PENDING_STATUSES, 'cancelled', {}, this.options.now()));
    if (record) {
      if (record.payloadRef) await this.calls.bestEffort(() => this.options.stores.payloads.delete(record.id));
      this.emitSettled(record);
    }
    return record;
  }

  /**
   * Defer a finished task again with the same arguments (a new task; its reference must be free).
   * Refused while the task is unfinished, and for large payloads already deleted after success.
   */
  async rerun(id: string): Promise<TaskInfo> {
    const record = await this.getTask(id);
    if (!record) throw new CloudDeferError('NOT_FOUND', `No task ${id} (it may have expired).`);
    if (!isFinished(record.status)) {
      throw new CloudDeferError('INVALID_STATE', `Task ${id} is ${record.status}; only a finished task can be rerun.`);
    }
    let args: unknown[];
    if (record.argsJson !== undefined) {
      args = this.options.codec.decodeArgs(Buffer.from(record.argsJson, 'utf8'));
    } else {
      const bytes = record.payloadRef ? await this.calls.call(() => this.options.stores.payloads.get(record.payloadRef!)) : undefined;
      if (!bytes)
        throw new CloudDeferError('PAYLOAD_MISSING', `The arguments of task ${id} are no longer stored (large payloads are deleted once a task finishes).`);
      args = this.options.codec.decodeArgs(bytes);
    }
    return this.defer(record.taskName, args, {
      queue: record.queue,
      ...(record.maxAttempts !== undefined ? { maxAttempts: record.maxAttempts } : {}),
      ...(record.reference !== undefined ? { reference: record.reference, onDuplicate: 'throw' as const } : {}),
    });
  }

  /**
   * Purge a queue: Cloud Tasks drops its tasks, and their records are marked cancelled (which
   * frees their references). Returns how many records were marked.
   */
  async purgeQueue(queue: string): Promise<{ marked: number }> {
    const transport = await this.options.transport();
    await transport.purgeQueue(queue);
    let marked = 0;
    for (const status of PENDING_STATUSES) {
      let cursor: string | undefined;
      do {
        const page = await this.listTasks({ queue, status, limit: 500, ...(cursor ? { cursor } : {}) });
        for (const record of page.records) {
          const purged = await this.calls.call(() =>
            this.options.stores.state.transition(
              record.id,
              PENDING_STATUSES,
              'cancelled',
              { lastError: { message: 'Purged from the queue', code: 'PURGED' } },
              this.options.now(),
            ),
          );
          if (purged) {
            marked += 1;
            if (purged.payloadRef) await this.calls.bestEffort(() => this.options.stores.payloads.delete(purged.payloadRef!));
            this.emitSettled(purged);
          }
        }
        cursor = page.nextCursor;
      } while (cursor);
    }
    return { marked };
  }

  /** Resolve with the record once the task has finished. */
  async waitFor(id: string, options: { timeoutMs?: number } = {}): Promise<TaskRecord> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    let delay = 5;
    for (;;) {
      const record = await this.getTask(id);
      if (record && isFinished(record.status)) return record;
      if (Date.now() >= deadline) {
        throw new CloudDeferError('TIMEOUT', `Task ${id} did not finish in time (status: ${record?.status ?? 'unknown'}).`);
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.settledListeners.delete(listener);
          resolve();
        };
        const listener: SettledListener = (settled) => {
          if (settled.id === id) done();
        };
        const timer = setTimeout(done, Math.min(delay, Math.max(deadline - Date.now(), 0)));
        this.settledListeners.add(listener);
      });
      delay = Math.min(delay * 2, 200);
    }
  }

  /** Forget the resolved transport (it was closed); the next defer asks the provider again. */
  forgetTransport(): void {
    this.transport = undefined;
  }

  onSettled(listener: SettledListener): () => void {
    this.settledListeners.add(listener);
    return () => this.settledListeners.delete(listener);
  }

  /** Mark the settle log now: drain({ since: mark }) counts only tasks settled after it. */
  mark(): DrainMark {
    return this.settleLog.mark();
  }

  private emitSettled(record: TaskRecord): void {
    this.settleLog.add(record);
    for (const listener of this.settledListeners) listener(record);
  }

  /**
   * Tests and scripts: run until every queue this engine uses is empty and no run is in flight.
   * Tasks scheduled later (or backing off) are dispatched now with RunTask unless asked not to.
   */
  async drain(options: DrainOptions = {}): Promise<DrainResult> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    const since = options.since ?? { succeeded: 0, failed: 0 };
    const transport = await this.options.transport();
    let quietRounds = 0;
    while (quietRounds < 2) {
      if (Date.now() > deadline) {
        throw new CloudDeferError('TIMEOUT', 'drain() timed out with tasks still queued or running.');
      }
      let pending = 0;
      for (const queue of this.queuesUsed) {
        const tasks = await transport.listTasks(queue).catch((err: unknown) => {
          if (err instanceof CloudDeferError && err.code === 'NOT_FOUND') return [];
          throw err;
        });
        pending += tasks.length;
        if (options.runScheduled === false) continue;
        const now = Date.now();
        for (const task of tasks) {
          if ((task.scheduleTime ?? 0) > now + 5) await transport.runTask(task.name).catch(() => undefined);
        }
      }
      quietRounds = pending === 0 && this.runner.inFlight === 0 ? quietRounds + 1 : 0;
      await new Promise((resolve) => setTimeout(resolve, quietRounds > 0 ? 2 : 10));
    }
    const result = this.settleLog.since(since);
    if (options.throwOnFailure && result.failed.length > 0) {
      const first = result.failed[0]!;
      throw new CloudDeferError(
        'INVALID_STATE',
        `${result.failed.length} task(s) failed during drain; first: ${first.taskName} (${first.id}): ${first.lastError?.message ?? 'failed'}`,
      );
    }
    return result;
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

/** Settle counts since the engine started; failed records kept up to a bound (the newest win). */
class SettleLog {
  private succeeded = 0;
  private failedCount = 0;
  private readonly failed: TaskRecord[] = [];
  private static readonly MAX_FAILED_KEPT = 10_000;

  add(record: TaskRecord): void {
    if (record.status === 'succeeded') this.succeeded += 1;
    else if (record.status === 'failed') {
      this.failedCount += 1;
      this.failed.push(record);
      if (this.failed.length > SettleLog.MAX_FAILED_KEPT) this.failed.shift();
    }
  }

  mark(): DrainMark {
    return { succeeded: this.succeeded, failed: this.failedCount };
  }

  since(mark: DrainMark): DrainResult {
    const newFailed = Math.max(0, this.failedCount - mark.failed);
    return { succeeded: Math.max(0, this.succeeded - mark.succeeded), failed: this.failed.slice(Math.max(0, this.failed.length - newFailed)) };
  }
}

export type { RegisteredTask, Delivery, DeliveryOutcome };
export { errorInfo };
