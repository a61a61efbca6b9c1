/**
 * Defer planning: check a defer's options and turn the call into the record to write and the
 * Cloud Tasks request to send, with no I/O. The sequence that writes and sends them is
 * defer-sequence.ts.
 */
import { createHash } from 'node:crypto';
import type { Codec } from './codec.js';
import { ENVELOPE_CONTENT_TYPE, encodeEnvelope } from './envelope.js';
import { CloudDeferError } from './errors.js';
import type { EnqueueRetry } from './defer-many.js';
import { queuedRecord, type TaskRecord, type TaskStatus } from './records.js';
import type { RegisteredTask, TaskDefaults } from './registry.js';
import type { StateStore } from './stores.js';
import { randomId } from './store-calls.js';
import { QUEUE_ID, type EnqueueRequest, type QueueTarget } from './transport.js';

const DAY_MS = 86_400_000;
const MAX_SCHEDULE_AHEAD_MS = 30 * DAY_MS;
const CLOUD_TASK_ID = /^[A-Za-z0-9_-]{1,500}$/;

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
export const DEFER_OPTION_KEYS = Object.keys(deferKeys);
export const TASK_OPTION_KEYS = Object.keys({ queue: true, maxAttempts: true, aliases: true } satisfies Record<keyof TaskDefaults, true>);

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

/** A Cloud Tasks task id derived from the record id, so a re-enqueue by the sweeper is de-duplicated. */
export function outboxTaskName(taskId: string): string {
  return `cd-${createHash('sha256').update(taskId).digest('hex').slice(0, 32)}`;
}

export function toMs(value: Date | number, option: string): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new CloudDeferError('INVALID_OPTION', `${option} must be a valid Date or epoch milliseconds.`);
  }
  return ms;
}

/** What planning needs from the engine's configuration. */
export interface PlanContext {
  codec: Codec;
  stores: { readonly state: StateStore };
  now: () => number;
  target: () => EngineTarget;
  defaultQueue: string;
  inlineLimitBytes: number;
  retentionMs: number;
  queueMaxAttempts?: ((queue: string) => number | undefined) | undefined;
}

/** One defer, planned: what to write and what to send. */
export interface DeferPlan {
  record: TaskRecord;
  request: EnqueueRequest;
  /** The encoded arguments when they go to the PayloadStore (too large to travel inline). */
  payload: Uint8Array | undefined;
  payloadTtl: number;
  now: number;
}

export function planDefer(
  context: PlanContext,
  registered: RegisteredTask,
  args: unknown[],
  options: DeferOptions,
  internal: InternalDeferOptions,
  injectTrace?: (headers: Record<string, string>) => void,
): DeferPlan {
  if (!Array.isArray(args)) {
    throw new CloudDeferError('INVALID_OPTION', `defer(${registered.name}, args) needs the arguments as an array.`);
  }
  const argsBytes = context.codec.encodeArgs(args);
  const now = context.now();
  const eta = etaOf(options, now);
  const queue = options.queue ?? registered.defaults.queue ?? context.defaultQueue;
  const target = context.target();
  validate(options, queue, target);
  const state = context.stores.state;
  const id = internal.id ?? state.newTaskId?.(options.reference) ?? randomId();
  const stored = argsBytes.byteLength > context.inlineLimitBytes;
  const argsText = stored ? undefined : Buffer.from(argsBytes.buffer, argsBytes.byteOffset, argsBytes.byteLength).toString('utf8');
  const body = encodeEnvelope({ task: registered.name, id, ...(argsText === undefined ? { payloadRef: id } : { argsText }) });
  const maxAttempts = options.maxAttempts ?? registered.defaults.maxAttempts ?? context.queueMaxAttempts?.(queue);
  const uniqueUntil = options.uniqueUntil === undefined ? undefined : toMs(options.uniqueUntil, 'uniqueUntil');
  const expiresAt = Math.max(eta, now) + context.retentionMs;
  const deterministic = options.transaction !== undefined || internal.idempotent === true || internal.enqueueRetry !== undefined;
  const cloudTaskId = options.name ?? (deterministic ? outboxTaskName(id) : undefined);
  const record: TaskRecord = queuedRecord(
    {
      id,
      taskName: registered.name,
      queue,
      eta,
      payloadSize: argsBytes.byteLength,
      expiresAt,
      ...(options.reference !== undefined ? { reference: options.reference } : {}),
      ...(uniqueUntil !== undefined ? { uniqueUntil } : {}),
      ...(maxAttempts !== undefined ? { maxAttempts } : {}),
      ...(argsText === undefined ? { payloadRef: id } : { argsJson: argsText }),
      ...(internal.iterationId !== undefined ? { iterationId: internal.iterationId } : {}),
      ...(internal.shardIndex !== undefined ? { shardIndex: internal.shardIndex } : {}),
    },
    now,
  );
  const request: EnqueueRequest = {
    queue,
    ...(cloudTaskId ? { taskId: cloudTaskId } : {}),
    ...(eta > now ? { scheduleTime: eta } : {}),
    ...(options.dispatchDeadline !== undefined ? { dispatchDeadlineMs: options.dispatchDeadline * 1000 } : {}),
    // A view, not a copy: encodeEnvelope's bytes are only read here.
    bodyBase64: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64'),
    headers: { 'Content-Type': ENVELOPE_CONTENT_TYPE },
    target: targetOf(options, target),
  };
  injectTrace?.(request.headers);
  const payloadTtl = expiresAt - now;

  return { record, request, payload: stored ? argsBytes : undefined, payloadTtl, now };
}

function etaOf(options: DeferOptions, now: number): number {
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

function validate(options: DeferOptions, queue: string, target: EngineTarget): void {
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
    const appEngine = isAppEngine(options, target);
    const [min, max] = appEngine ? [15, 86_415] : [15, 1_800];
    if (!(typeof options.dispatchDeadline === 'number' && options.dispatchDeadline >= min && options.dispatchDeadline <= max)) {
      throw new CloudDeferError('INVALID_OPTION', `dispatchDeadline must be ${min}-${max} seconds for ${appEngine ? 'App Engine' : 'HTTP'} targets.`);
    }
  }
}

function isAppEngine(options: DeferOptions, target: EngineTarget): boolean {
  if (options.service !== undefined || options.version !== undefined || options.instance !== undefined) return true;
  if (options.url !== undefined) return false;
  return target.default === 'appEngine';
}

function targetOf(options: DeferOptions, target: EngineTarget): QueueTarget {
  if (isAppEngine(options, target)) {
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

/**
 * The Cloud Tasks request that delivers an existing record again (the reconciler), under `taskId`;
 * the envelope carries what the record holds, so it agrees with it.
 */
export function requestForRecord(record: TaskRecord, target: EngineTarget, taskId: string, now: number): EnqueueRequest {
  const body = encodeEnvelope({
    task: record.taskName,
    id: record.id,
    ...(record.payloadRef !== undefined ? { payloadRef: record.payloadRef } : { argsText: record.argsJson ?? '[]' }),
  });
  return {
    queue: record.queue,
    taskId,
    // A task that has not run yet keeps its ETA.
    ...(record.eta > now ? { scheduleTime: record.eta } : {}),
    bodyBase64: Buffer.from(body).toString('base64'),
    headers: { 'Content-Type': ENVELOPE_CONTENT_TYPE },
    target: targetOf({}, target),
  };
}
