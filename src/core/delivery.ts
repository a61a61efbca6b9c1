/**
 * Running one delivery (steps 3-6 of ARCHITECTURE.md): decode the envelope, take the execution
 * guard, load the arguments, run the task in its context, and record the outcome.
 */
import type { Codec } from './codec.js';
import { decodeEnvelope } from './envelope.js';
import { runInTaskContext, type TaskContext } from './context.js';
import { CloudDeferError, isPermanentTaskFailure, isSingularTaskFailure } from './errors.js';
import type { LogFields, Logger } from './logger.js';
import { isFinished, queuedRecord, type AttemptRecord, type TaskRecord, type TaskStatus } from './records.js';
import type { TaskRegistry } from './registry.js';
import { errorInfo, randomId, type StoreCalls } from './store-calls.js';
import type { SettleInput, Stores } from './stores.js';
import { canStageWrites, taskChangeWrites } from './documents.js';
import * as lifecycle from './lifecycle.js';
import { RunningSet, type Heartbeat, type RunHandle } from './lease-keeper.js';
import type { TaskCounters } from './counters.js';
import { retriesExhausted } from './reconciler.js';
import type { DeliveryTrace, RunLabels, TaskTelemetry } from './telemetry.js';

/** One delivery of a task, as the HTTP layer read it from the request. */
export interface Delivery {
  body: Uint8Array;
  targetKind: 'http' | 'appEngine';
  queueName?: string;
  cloudTaskName?: string;
  retryCount: number;
  executionCount: number;
  /** Epoch ms from X-CloudTasks-TaskETA. */
  eta?: number;
  /** The trace the request carried, for log entries. */
  trace?: DeliveryTrace;
  /** The request's propagation headers (traceparent, tracestate, x-cloud-trace-context). */
  traceHeaders?: Record<string, string>;
  /**
   * The sender proved it is Cloud Tasks (a verified token, App Engine's headers on App Engine);
   * false under auth mode "none". Only a verified delivery may rebuild a missing record.
   */
  verified: boolean;
}

export type DeliveryOutcome =
  | { kind: 'succeeded'; taskId: string }
  | { kind: 'failed'; taskId?: string; reason: string }
  | { kind: 'duplicate'; taskId: string; status: TaskStatus }
  | { kind: 'retry'; taskId: string; quiet: boolean }
  | { kind: 'busy'; taskId: string; retryAfterSeconds: number }
  | { kind: 'unavailable'; reason: string }
  /** Not run: no record and an unverified sender, or an envelope that disagrees with its record. */
  | { kind: 'refused'; taskId: string; reason: 'NO_RECORD' | 'ENVELOPE_MISMATCH' };

export interface DeliveryRunnerOptions {
  stores: Stores;
  codec: Codec;
  logger: Logger;
  registry: TaskRegistry;
  calls: StoreCalls;
  defaultQueue: string;
  retentionMs: number;
  leaseMs: number;
  /**
   * The short lease a run holds and renews on a heartbeat while it is alive (stores with
   * renewLease); never past `leaseMs` from the start. 0 or absent: the lease is `leaseMs`.
   */
  heartbeatLeaseMs?: number;
  /** The queue's retryConfig.maxRetryDuration in ms: a failure after it is the last attempt. */
  queueMaxRetryMs?: (queue: string) => number | undefined;
  acquireRetryMs?: number;
  settleRetryMs?: number;
  now: () => number;
  /** Per-minute counters the console reads (optional). */
  counters?: TaskCounters;
  /** Told of every record a run settled. */
  onSettled(record: TaskRecord): void;
  /** Spans and metrics (src/otel), when OpenTelemetry is present. */
  telemetry?: TaskTelemetry;
}

/** taskId, taskName, queue, attempt and the request's trace: on every entry about a delivery. */
function logFields(delivery: Delivery, task: { id?: string; taskName?: string; queue?: string }, extra: LogFields = {}): LogFields {
  const queue = delivery.queueName ?? task.queue;
  return {
    ...(task.id !== undefined ? { taskId: task.id } : {}),
    ...(task.taskName !== undefined ? { taskName: task.taskName } : {}),
    ...(queue !== undefined ? { queue } : {}),
    // 1-based, as the messages and the console count attempts (X-CloudTasks-TaskRetryCount + 1).
    attempt: delivery.retryCount + 1,
    ...(delivery.cloudTaskName !== undefined ? { cloudTaskName: delivery.cloudTaskName } : {}),
    ...(delivery.trace
      ? {
          traceId: delivery.trace.traceId,
          ...(delivery.trace.spanId ? { spanId: delivery.trace.spanId } : {}),
          ...(delivery.trace.sampled !== undefined ? { traceSampled: delivery.trace.sampled } : {}),
        }
      : {}),
    ...extra,
  };
}

export class DeliveryRunner {
  /** Runs under way in this process (drain() waits for them). */
  inFlight = 0;
  /** Runs under way here: a second delivery of one of them is answered busy, never run twice. */
  readonly running = new RunningSet();
  /** Set by shutdown(): new deliveries are refused (503) so Cloud Tasks sends them elsewhere. */
  private closing = false;
  /**
   * Owners whose claim may have been applied by the store although its reply was lost (the store
   * went away mid-call). The next delivery of that task in this process claims with the same
   * owner, which the store answers as its own lease instead of a stranger's live one.
   */
  private readonly strandedOwners = new Map<string, string>();
  private readonly registry: TaskRegistry;
  private readonly calls: StoreCalls;
  private readonly onSettled: (record: TaskRecord) => void;
  /** The lease a claim takes: the short heartbeat lease when the store can renew it. */
  private readonly claimMs: number;

  constructor(private readonly options: DeliveryRunnerOptions) {
    this.registry = options.registry;
    this.calls = options.calls;
    this.onSettled = options.onSettled;
    const short = options.heartbeatLeaseMs ?? 0;
    this.claimMs = short > 0 && short < options.leaseMs && options.stores.state.renewLease ? short : options.leaseMs;
  }

  /** Steps 3-6 of ARCHITECTURE.md for one authenticated delivery. Never throws. */
  async run(delivery: Delivery): Promise<DeliveryOutcome> {
    this.inFlight += 1;
    try {
      const telemetry = this.options.telemetry;
      if (!telemetry) return await this.runDelivery(delivery);
      return await telemetry.deliverySpan(delivery.traceHeaders ?? {}, (name) => this.runDelivery(delivery, name));
    } catch (err) {
      // Last line of defence (a bug, or a value that broke a step): answer, never throw to the framework.
      this.options.logger.error('a delivery failed unexpectedly; asking Cloud Tasks to retry', { error: errorInfo(err).message });
      return { kind: 'unavailable', reason: errorInfo(err).message };
    } finally {
      this.inFlight -= 1;
    }
  }

  private async runDelivery(delivery: Delivery, nameSpan?: (labels: RunLabels) => void): Promise<DeliveryOutcome> {
    const { logger } = this.options;
    let envelope;
    try {
      envelope = decodeEnvelope(delivery.body);
    } catch (err) {
      logger.error('undecodable task envelope; acknowledged so it is not retried', logFields(delivery, {}, { error: errorInfo(err) }));
      return { kind: 'failed', reason: 'INVALID_ENVELOPE' };
    }
    if (this.closing) return { kind: 'unavailable', reason: 'shutting down' };
    // Running here: acknowledged, so the queue's attempts are not burnt; the run settles the record (README "Running elsewhere").
    if (this.running.has(envelope.id)) return { kind: 'duplicate', taskId: envelope.id, status: 'running' };
    // Taken, not read: only one later delivery may reuse a stranded owner.
    const owner = this.strandedOwners.get(envelope.id) ?? randomId();
    this.strandedOwners.delete(envelope.id);
    const now = this.options.now();
    let lease;
    try {
      lease = await this.acquire(envelope, delivery, owner, now);
    } catch (err) {
      this.rememberStrandedOwner(envelope.id, owner);
      logger.warn(
        'state store unavailable; asking Cloud Tasks to retry',
        logFields(delivery, { id: envelope.id, taskName: envelope.task }, { error: errorInfo(err) }),
      );
      return { kind: 'unavailable', reason: errorInfo(err).message };
    }
    if (lease.kind === 'finished') return { kind: 'duplicate', taskId: envelope.id, status: lease.record.status };
    // A live lease elsewhere: acknowledged (200) rather than retried, since every retry would use
    // one of the queue's attempts while the run holds the task. Should that run die, its short
    // lease runs out and sweep()'s reconciler enqueues the task again (no Cloud Task left for it).
    if (lease.kind === 'busy') return { kind: 'duplicate', taskId: envelope.id, status: 'running' };
    if (lease.kind === 'missing') {
      if (envelope.payloadRef !== undefined && envelope.payloadRef !== envelope.id) {
        logger.error("refused a delivery with no record whose envelope names another task's payload; not run", { taskId: envelope.id });
        return { kind: 'refused', taskId: envelope.id, reason: 'ENVELOPE_MISMATCH' };
      }
      if (delivery.verified) return { kind: 'unavailable', reason: 'record vanished during acquisition' };
      logger.warn('refused a delivery for a task with no record: only a verified Cloud Tasks delivery may rebuild one', { taskId: envelope.id });
      return { kind: 'refused', taskId: envelope.id, reason: 'NO_RECORD' };
    }
    const record = lease.record;
    // The record as this run last wrote it: the settle decides on it without reading first.
    const held = { record };
    const run = this.running.begin(record.id, owner, now + this.options.leaseMs, now, this.heartbeatFor(held, owner));
    try {
      return await this.runAcquired(envelope, held, owner, delivery, now, run, nameSpan);
    } finally {
      this.running.end(record.id);
    }
  }

  /** The heartbeat of a run that holds a short lease, or undefined when its lease covers the deadline. */
  private heartbeatFor(held: { record: TaskRecord }, owner: string): { leaseUntil: number; beat: Heartbeat } | undefined {
    const state = this.options.stores.state;
    const record = held.record;
    if (this.claimMs >= this.options.leaseMs || !state.renewLease) return undefined;
    const renew = state.renewLease.bind(state);
    return {
      leaseUntil: record.leaseUntil ?? this.options.now() + this.claimMs,
      beat: {
        leaseMs: this.claimMs,
        renew: async (leaseMs) => {
          try {
            const renewed = await renew(record.id, { owner, now: this.options.now(), leaseMs });
            if (renewed) held.record = renewed;
            return renewed ? 'held' : 'lost';
          } catch {
            return 'unknown';
          }
        },
      },
    };
  }

  private async runAcquired(
    envelope: ReturnType<typeof decodeEnvelope>,
    held: { readonly record: TaskRecord },
    owner: string,
    delivery: Delivery,
    now: number,
    run: RunHandle,
    nameSpan?: (labels: RunLabels) => void,
  ): Promise<DeliveryOutcome> {
    const { logger } = this.options;
    const record = held.record;

    // Set once the task has staged its `succeeded` record in a transaction of its own.
    let successStaged = false;
    const finish = (status: 'succeeded' | 'failed' | 'retrying', statusCode: number, started: number, err?: unknown) =>
      this.settle(held.record, owner, status, statusCode, started, delivery, err, successStaged);

    // Earlier runs, some cut short by their instance, may have used up maxAttempts; a Cloud Task
    // the sweep enqueued again has attempts of its own, so the record decides.
    const cut = record.interruptedRuns ?? 0;
    if (
      cut > 0 &&
      retriesExhausted(record, record.maxAttempts, this.options.queueMaxRetryMs?.(record.queue), now, { attempts: record.attempts - 1, interruptedRuns: cut })
    ) {
      const message = `No attempt is left for this task (${record.attempts - 1} runs, ${cut} of them cut short by their instance; maxAttempts ${record.maxAttempts ?? '-'}); recorded failed, not run again.`;
      logger.error(message, logFields(delivery, record));
      await finish('failed', 200, now, { code: 'ABANDONED', message });
      return { kind: 'failed', taskId: record.id, reason: 'MAX_ATTEMPTS' };
    }
    // The record is the authority for what runs: an envelope that says otherwise is not run.
    const disagreement = envelopeDisagreement(envelope, record);
    if (disagreement) {
      logger.error(`refused a delivery whose envelope disagrees with task record ${record.id} (${disagreement}); not run`, logFields(delivery, record));
      await finish(
        'retrying',
        200,
        now,
        new CloudDeferError('INVALID_ENVELOPE', `A delivery's envelope disagreed with this record (${disagreement}); it was refused and not run.`),
      );
      return { kind: 'refused', taskId: record.id, reason: 'ENVELOPE_MISMATCH' };
    }
    const task = this.registry.get(record.taskName);
    if (!task) {
      const unknown = new CloudDeferError('UNREGISTERED_TASK', this.registry.unknownTaskMessage(record.taskName));
      logger.error(`${unknown.message} Recorded failed and acknowledged.`, logFields(delivery, record, { error: errorInfo(unknown) }));
      await finish('failed', 200, now, unknown);
      return { kind: 'failed', taskId: envelope.id, reason: 'UNREGISTERED_TASK' };
    }

    let args: unknown[];
    try {
      // Inline arguments (most tasks) decode without a store call, so without an await.
      const payloadRef = record.payloadRef;
      args = payloadRef === undefined ? this.inlineArgs(envelope, record) : await this.storedArgs(record.id, payloadRef);
    } catch (err) {
      if (err instanceof CloudDeferError && err.code === 'STORE_UNAVAILABLE') {
        await finish('retrying', 503, now, err);
        return { kind: 'unavailable', reason: err.message };
      }
      logger.error('task arguments cannot be loaded; recorded failed and acknowledged', logFields(delivery, record, { error: errorInfo(err) }));
      await finish('failed', 200, now, err);
      return { kind: 'failed', taskId: envelope.id, reason: err instanceof CloudDeferError ? err.code : 'INVALID_ENVELOPE' };
    }

    const started = this.options.now();
    // Built field by field (no conditional spreads: each is a copy, on every delivery).
    const context: { -readonly [K in keyof TaskContext]: TaskContext[K] } = {
      id: record.id,
      name: task.name,
      queue: delivery.queueName ?? record.queue,
      attempt: delivery.retryCount,
      executionCount: delivery.executionCount,
      eta: new Date(delivery.eta ?? record.eta),
      // Made on first use: most tasks never look at it.
      get signal() {
        return run.signal;
      },
      recordSuccessIn: async (transaction) => {
        successStaged = true;
        await this.stageSuccess(transaction, held.record, owner, started, delivery);
      },
    };
    if (record.reference !== undefined) context.reference = record.reference;
    if (record.iterationId !== undefined) context.iterationId = record.iterationId;
    if (record.shardIndex !== undefined) context.shardIndex = record.shardIndex;
    const labels: RunLabels = { taskId: record.id, taskName: task.name, queue: context.queue, attempt: delivery.retryCount };
    nameSpan?.(labels);
    const telemetry = this.options.telemetry;
    const runTask = async (): Promise<unknown> => runInTaskContext(context, () => (task.fn as (...a: unknown[]) => unknown)(...args));
    try {
      await (telemetry ? telemetry.runSpan(labels, runTask) : runTask());
    } catch (err) {
      const outcome = await this.afterFailure(record, started, err, finish, delivery);
      telemetry?.ran(labels, outcome.kind === 'failed' ? 'failed' : 'retried', this.options.now() - started);
      return outcome;
    }
    await finish('succeeded', 200, started);
    telemetry?.ran(labels, 'succeeded', this.options.now() - started);
    return { kind: 'succeeded', taskId: record.id };
  }

  private async afterFailure(
    record: TaskRecord,
    started: number,
    err: unknown,
    finish: (status: 'succeeded' | 'failed' | 'retrying', statusCode: number, started: number, err?: unknown) => Promise<void>,
    delivery: Delivery,
  ): Promise<DeliveryOutcome> {
    const { logger } = this.options;
    if (isPermanentTaskFailure(err)) {
      logger.warn(`task ${record.taskName} failed permanently; not retried`, logFields(delivery, record, { error: errorInfo(err) }));
      await finish('failed', 200, started, err);
      return { kind: 'failed', taskId: record.id, reason: 'PERMANENT_TASK_FAILURE' };
    }
    const exhausted = retriesExhausted(record, record.maxAttempts, this.options.queueMaxRetryMs?.(record.queue), this.options.now());
    if (exhausted) {
      logger.error(
        `task ${record.taskName} failed on its last allowed attempt (${lifecycle.countedAttempts(record.attempts, record.interruptedRuns ?? 0, record.maxAttempts)}/${record.maxAttempts})`,
        logFields(delivery, record, { error: errorInfo(err) }),
      );
      await finish('failed', 200, started, err);
      return { kind: 'failed', taskId: record.id, reason: 'MAX_ATTEMPTS' };
    }
    if (isSingularTaskFailure(err)) {
      await finish('retrying', 503, started, err);
      return { kind: 'retry', taskId: record.id, quiet: true };
    }
    logger.error(`task ${record.taskName} failed; the queue will retry it`, logFields(delivery, record, { error: errorInfo(err) }));
    await finish('retrying', 500, started, err);
    return { kind: 'retry', taskId: record.id, quiet: false };
  }

  private async acquire(
    envelope: ReturnType<typeof decodeEnvelope>,
    delivery: Delivery,
    owner: string,
    now: number,
  ): Promise<Awaited<ReturnType<Stores['state']['acquireLease']>>> {
    const { id, task: taskName, payloadRef } = envelope;
    const state = this.options.stores.state;
    const input = { owner, now, leaseMs: this.claimMs, executionCount: delivery.executionCount };
    // Retried with the same owner: if the store applied a call whose reply was lost, the retry
    // finds our own lease instead of a stranger's, which would block the task until it expired.
    const lease = await this.calls.retryWhileUnavailable(
      () => this.calls.call(() => state.acquireLease(id, input)),
      this.options.acquireRetryMs ?? 10_000,
      () => this.options.logger.warn('state store unavailable; retrying to claim the task', logFields(delivery, { id, taskName })),
    );
    // The engine stores a payload under its task's own id: an envelope naming another task's cannot rebuild a record.
    if (lease.kind !== 'missing' || !delivery.verified || (payloadRef !== undefined && payloadRef !== id)) return lease;
    // No record (expired, or the store was wiped) on a verified delivery: rebuild it from the envelope so the run is still guarded.
    const eta = delivery.eta ?? now;
    await this.calls
      .call(() =>
        state.createTask(
          queuedRecord(
            {
              id,
              taskName,
              queue: delivery.queueName ?? this.options.defaultQueue,
              eta,
              payloadSize: delivery.body.byteLength,
              expiresAt: now + this.options.retentionMs,
              ...(payloadRef ? { payloadRef } : { argsJson: JSON.stringify(envelope.argsTree ?? []) }),
            },
            now,
          ),
          now,
        ),
      )
      .catch(() => undefined);
    return this.calls.call(() => state.acquireLease(id, input));
  }

  /** The record's inline arguments; the envelope's only for a record that holds none. */
  private inlineArgs(envelope: ReturnType<typeof decodeEnvelope>, record: TaskRecord): unknown[] {
    const { codec } = this.options;
    return record.argsJson !== undefined ? codec.decodeArgs(Buffer.from(record.argsJson, 'utf8')) : codec.decodeArgsTree(envelope.argsTree ?? []);
  }

  /** The arguments a record keeps in the PayloadStore (large ones). */
  private async storedArgs(taskId: string, payloadRef: string): Promise<unknown[]> {
    const bytes = await this.calls.call(() => this.options.stores.payloads.get(payloadRef));
    if (!bytes) {
      throw new CloudDeferError('PAYLOAD_MISSING', `The stored payload of task ${taskId} is gone (expired or deleted); the task cannot run.`);
    }
    return this.options.codec.decodeArgs(bytes);
  }

  /** The outcome a settle writes: the attempt's entry in the history, the error, the retention. */
  private settleInput(
    owner: string,
    status: 'succeeded' | 'failed' | 'retrying',
    statusCode: number,
    started: number,
    delivery: Delivery,
    err?: unknown,
    last?: TaskRecord,
  ): SettleInput {
    const now = this.options.now();
    // `throw undefined` is still a failure with an error to show.
    const error = status === 'succeeded' ? undefined : errorInfo(err);
    const attempt: AttemptRecord = {
      at: started,
      statusCode,
      outcome: status,
      durationMs: Math.max(0, now - started),
      retryCount: delivery.retryCount,
      ...(error ? { error } : {}),
    };
    const input: SettleInput = { owner, status, now, attempt, expiresAt: now + this.options.retentionMs };
    if (error) input.error = error;
    if (last) input.last = last;
    return input;
  }

  /**
   * currentTask().recordSuccessIn(tx): the run's `succeeded` record joins the user's transaction,
   * so the task's writes and its outcome commit together and a process killed after that commit
   * does not have the task run again. A run that no longer holds the lease fails the transaction.
   */
  private async stageSuccess(transaction: unknown, record: TaskRecord, owner: string, started: number, delivery: Delivery): Promise<void> {
    const { stores } = this.options;
    const hook = stores.transactions.find((candidate) => candidate.accepts(transaction));
    if (!hook) {
      throw new CloudDeferError(
        'INVALID_OPTION',
        `recordSuccessIn() was given a transaction the ${stores.kind} stores cannot join: pass a transaction of the stores' own client (for example from stores.transaction()).`,
      );
    }
    if (!canStageWrites(hook)) throw new CloudDeferError('INVALID_OPTION', `The ${hook.name} stores cannot write a task record in a transaction.`);
    const input = this.settleInput(owner, 'succeeded', 200, started, delivery);
    await hook.stageWrites(transaction, async (read) => {
      const change = await taskChangeWrites(read, record.id, (current) => lifecycle.settle(current, input));
      if (!change.result) {
        throw new CloudDeferError(
          'INVALID_STATE',
          `This run no longer holds task ${record.id} (another delivery took it over, or it was cancelled): its transaction must not commit. Stop the run.`,
        );
      }
      return change.writes;
    });
  }

  /** True when the record holds this run's own success, committed in the task's transaction. */
  private static successOfThisRun(record: TaskRecord | undefined, started: number, delivery: Delivery): record is TaskRecord {
    const last = record?.history.at(-1);
    return record?.status === 'succeeded' && last?.outcome === 'succeeded' && last.at === started && last.retryCount === delivery.retryCount;
  }

  private async settle(
    record: TaskRecord,
    owner: string,
    status: 'succeeded' | 'failed' | 'retrying',
    statusCode: number,
    started: number,
    delivery: Delivery,
    err?: unknown,
    successStaged = false,
  ): Promise<void> {
    const input = this.settleInput(owner, status, statusCode, started, delivery, err, record);
    const { stores, logger } = this.options;
    let settled: TaskRecord | undefined;
    const write = () => this.calls.call(() => stores.state.settle(record.id, input));
    try {
      // The run has happened: losing its outcome to a short store outage would make the
      // record look stuck (and the task run again once its lease expires), so keep trying.
      settled = await this.calls.retryWhileUnavailable(write, this.options.settleRetryMs ?? 30_000);
      if (!settled && successStaged) {
        // The task's own transaction committed its success: that is the outcome, whatever came after.
        const current = await this.calls.retryWhileUnavailable(
          () => this.calls.call(() => stores.state.getTask(record.id)),
          this.options.settleRetryMs ?? 30_000,
        );
        if (DeliveryRunner.successOfThisRun(current, started, delivery)) {
          if (status !== 'succeeded') {
            logger.warn(
              'the task failed after its transaction had recorded it succeeded; the record stays succeeded',
              logFields(delivery, current, { error: errorInfo(err) }),
            );
          }
          settled = current;
        }
      }
    } catch (settleErr) {
      logger.error('could not record the task outcome', logFields(delivery, record, { error: errorInfo(settleErr) }));
      return;
    }
    if (!settled) {
      logger.warn('the task lease was taken over before this run settled; its outcome was not recorded', logFields(delivery, record));
      return;
    }
    if (isFinished(settled.status) && record.payloadRef) await this.calls.bestEffort(() => stores.payloads.delete(record.payloadRef!));
    const counters = this.options.counters;
    if (counters) {
      const outcome = settled.status === 'succeeded' ? 'succeeded' : status;
      await this.calls.bestEffort(() => counters.record({ queue: settled.queue, outcome, durationMs: input.attempt.durationMs, at: input.now }));
    }
    this.onSettled(settled);
  }

  /**
   * Graceful shutdown: refuse new deliveries, let runs under way finish for up to `graceMs`, then
   * fire the signals of those still going and release their leases (record `retrying`, no lease)
   * so that the next delivery, on another instance, runs them at once instead of waiting.
   */
  async shutdown(graceMs: number): Promise<{ finished: number; released: number }> {
    this.closing = true;
    const before = this.running.size;
    const deadline = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const unfinished = this.running.list();
    this.running.abortAll('The app is shutting down');
    const now = this.options.now();
    let released = 0;
    await Promise.all(
      unfinished.map(async (run) => {
        const error = { message: 'Released at shutdown before the run finished; the next delivery runs it again', code: 'SHUTDOWN' };
        const settled = await this.calls
          .call(() =>
            this.options.stores.state.settle(run.taskId, {
              owner: run.owner,
              status: 'retrying',
              now,
              attempt: { at: now, statusCode: 503, outcome: 'retrying', durationMs: 0, error },
              error,
              expiresAt: now + this.options.retentionMs,
            }),
          )
          .catch(() => undefined);
        if (settled) released += 1;
      }),
    );
    return { finished: Math.max(0, before - unfinished.length), released };
  }

  /** Take deliveries again (an engine started again after shutdown()). */
  resume(): void {
    this.closing = false;
  }

  private rememberStrandedOwner(taskId: string, owner: string): void {
    if (this.strandedOwners.size >= 10_000) {
      const oldest = this.strandedOwners.keys().next().value;
      if (oldest !== undefined) this.strandedOwners.delete(oldest);
    }
    this.strandedOwners.set(taskId, owner);
  }
}

/** How an envelope contradicts the record it names (task, payload reference, inline arguments), or undefined. */
function envelopeDisagreement(envelope: ReturnType<typeof decodeEnvelope>, record: TaskRecord): string | undefined {
  if (envelope.task !== record.taskName) return `task "${envelope.task}" instead of "${record.taskName}"`;
  if (envelope.payloadRef !== record.payloadRef) return 'another payload reference';
  // Both come from the codec's JSON, which parses and prints back to the same text.
  if (record.argsJson !== undefined && JSON.stringify(envelope.argsTree ?? []) !== record.argsJson) return 'other arguments';
  return undefined;
}
