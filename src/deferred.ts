/**
 * createDeferred(): the composition root. Picks the queue transport (embedded emulator, an external
 * emulator, or Cloud Tasks), the stores (memory by default), the target and the authentication
 * mode, and hands them to the framework-free engine in src/core.
 */
import type { CloudTasksClient } from '@google-cloud/tasks';
import { createCodec, type Codec } from './core/codec.js';
import {
  DeferredEngine,
  type DeferOptions,
  type DeferredTask,
  type DrainOptions,
  type DrainMark,
  type DrainResult,
  type EngineTarget,
  type SweepResult,
  type TaskInfo,
} from './core/engine.js';
import { CloudDeferError } from './core/errors.js';
import { assertOptionKeys } from './core/option-keys.js';
import type { Logger } from './core/logger.js';
import { resolveLogger, type LoggerOption } from './logging/adapt.js';
import { openTelemetry } from './otel/index.js';
import type { TaskTelemetry } from './core/telemetry.js';
import type { DeferManyItem, DeferManyOptions, DeferManyResult } from './core/defer-many.js';
import { runDoctor, type DoctorOptions, type DoctorReport } from './doctor.js';
import type { TaskRecord } from './core/records.js';
import type { DeferredAdmin } from './core/admin.js';
import type { TaskDefaults } from './core/registry.js';
import type { Stores, TaskPage, TaskQuery } from './core/stores.js';
import type { QueueConfig, QueueInfo, QueuedTaskInfo, QueueTransport } from './core/transport.js';
import { isAllowedHost, TaskAuthenticator, type AuthOptions, type Jwks } from './http/auth.js';
import { defaultAuth, resolveMode, unsafeAuthReason } from './runtime-mode.js';
import { appEngineServiceAccountEmail } from './emulator/oidc.js';
import { TaskHandler } from './http/handler.js';
import { createConsoleHandler, type ConsoleHandler, type ConsoleOptions } from './console/console.js';
import { CloudTasksTransport } from './queue/cloud-tasks.js';
import { warmUp } from './warm-up.js';
import { Iterations, type DeferIterationOptions, type IterationInfo } from './iteration/iteration.js';
import type { IterationRecord, IterationSource, SourceSpec } from './core/iteration.js';
import { memoryStores } from '../adapters/memory/index.js';
import { memoryCounters } from '../adapters/memory/counters.js';
import type { TaskCounters } from './core/counters.js';
import type { EmulatorHandle, EmulatorOptions } from './emulator/index.js';

export const DEFAULT_HANDLER_PATH = '/_ah/queue/deferred';
export const DEFAULT_SWEEP_PATH = '/_ah/deferred/sweep';
const KIB = 1024;
const CLOUD_TASKS_MAX_BYTES = 1024 * KIB;
const DAY_MS = 86_400_000;

export type HttpTargetOptions = {
  /** The handler's public URL; a function is read at each defer (handy when the port is known late). */
  url?: string | (() => string);
  /** Cloud Tasks signs an OIDC token for this account; the handler accepts only it. */
  serviceAccountEmail?: string;
  /** Token audience; default the URL. */
  audience?: string;
};

export type AppEngineTargetOptions = {
  appEngine: { service?: string; version?: string; instance?: string };
};

export interface CreateDeferredOptions {
  /** Where task state and large payloads live. Default: memory (fine for one process and tests). */
  stores?: Stores;
  /**
   * auto (default): CLOUD_TASKS_EMULATOR_HOST set -> that emulator; Cloud Run or App Engine
   * (K_SERVICE, GAE_ENV) or a `client` -> Cloud Tasks; a developer's machine -> the embedded
   * emulator, in process. Anywhere else (NODE_ENV=production, KUBERNETES_SERVICE_HOST,
   * CLOUD_RUN_JOB, or `target`/`auth` configured) auto refuses to start: set the mode.
   */
  mode?: 'auto' | 'embedded' | 'emulator' | 'cloud';
  projectId?: string;
  location?: string;
  /** Your own CloudTasksClient (cloud mode). */
  client?: CloudTasksClient;
  /** A custom transport (replaces Cloud Tasks entirely). */
  transport?: QueueTransport;
  /** Where tasks are delivered. Default: HTTP to this app's handler (http://127.0.0.1:$PORT/... locally). */
  target?: HttpTargetOptions | AppEngineTargetOptions;
  handlerPath?: string;
  sweepPath?: string;
  /**
   * Where the middleware is mounted (`app.use('/tasks', mw)`, a router prefix, koa-mount): the
   * target URL Cloud Tasks is given becomes mountPath + handlerPath. Default '' (the app's root).
   */
  mountPath?: string;
  /** Queues created or updated at start-up (UpdateQueue with a field mask). */
  queues?: QueueConfig[];
  defaultQueue?: string;
  auth?: AuthOptions;
  /** Encoded arguments above this many bytes go to the PayloadStore. Default 100 KiB, at most 1 MiB. */
  inlineLimitBytes?: number;
  /** How long task records are kept after they finish (or after their ETA). Default 7 days. */
  retentionMs?: number;
  /** The longest a run may hold its task (its dispatch deadline bound). Default 10 min 30 s. */
  leaseMs?: number;
  /**
   * The short lease a run takes and renews every third of it while it is alive (stores with
   * renewLease: memory, Redis), never past `leaseMs`. A killed instance frees its tasks within
   * it. Default 30 s; 0 turns the heartbeat off (the lease is then `leaseMs`).
   */
  heartbeatLeaseMs?: number;
  /**
   * How long a delivery waits for an unreachable state store: to claim its task before answering
   * 503 (default 10 s), and to record a finished run (default 30 s).
   */
  storeRetry?: { acquireMs?: number; settleMs?: number };
  /** Largest request body the handler reads. Default 1.5 MiB. */
  maxBodyBytes?: number;
  /**
   * Embedded mode answers only requests whose Host is a loopback literal, `localhost` or the
   * target URL's host (DNS rebinding); list other Host values to serve here ("name" or "name:port").
   */
  allowedHosts?: readonly string[];
  /**
   * console, winston, pino (recognised; or wrap any `(fields, message)` logger with fieldsFirst()),
   * 'cloud-logging' (JSON lines for Cloud Logging), 'console', or false. Default: 'cloud-logging'
   * on Cloud Run, App Engine and GKE (K_SERVICE, GAE_ENV, KUBERNETES_SERVICE_HOST), else console.
   */
  logger?: LoggerOption;
  /**
   * Spans from defer to run and task metrics through @opentelemetry/api when it is installed
   * (default 'auto'); your own hooks; or false for none.
   */
  telemetry?: 'auto' | false | TaskTelemetry;
  codec?: Codec;
  /** Iteration sources (Redis sorted sets, Datastore queries, ...) the shards of deferIteration may read. */
  sources?: IterationSource[];
  /** Options for the embedded emulator (clock, limits). */
  emulator?: Partial<EmulatorOptions>;
  /** The web console (docs/console.md): on with an authorize hook; on the embedded default, loopback only; `false`: off. */
  console?: ConsoleOptions | false;
  /** Per-minute counters for the console's totals and charts. Default: in memory with the memory stores, none otherwise; `false`: none. */
  counters?: TaskCounters | false;
  now?: () => number;
}

/** Every option key, typed so a new option must be listed; unknown keys are refused. */
const createDeferredKeys: Record<keyof CreateDeferredOptions, true> = {
  stores: true,
  mode: true,
  projectId: true,
  location: true,
  client: true,
  transport: true,
  target: true,
  handlerPath: true,
  sweepPath: true,
  mountPath: true,
  queues: true,
  defaultQueue: true,
  auth: true,
  inlineLimitBytes: true,
  retentionMs: true,
  leaseMs: true,
  heartbeatLeaseMs: true,
  storeRetry: true,
  maxBodyBytes: true,
  logger: true,
  codec: true,
  sources: true,
  emulator: true,
  console: true,
  now: true,
  allowedHosts: true,
  counters: true,
  telemetry: true,
};

interface Runtime {
  transport: QueueTransport;
  mode: 'embedded' | 'emulator' | 'cloud' | 'custom';
  emulator?: EmulatorHandle;
}

function countersOption(counters: TaskCounters | false | undefined, stores: Stores): { counters?: TaskCounters } {
  if (counters === false) return {};
  if (counters) return { counters };
  return stores.kind === 'memory' ? { counters: memoryCounters() } : {};
}

function defaultLocalUrl(path: string): string {
  return `http://127.0.0.1:${process.env.PORT ?? 3000}${path}`;
}

export class Deferred implements DeferredAdmin {
  readonly engine: DeferredEngine;
  readonly handler: TaskHandler;
  /** The web console, when enabled; the Express and Koa middlewares route its path to it. */
  readonly consoleHandler?: ConsoleHandler;
  private readonly iterations: Iterations;
  readonly handlerPath: string;
  readonly sweepPath: string;
  /** mountPath + handlerPath: the path Cloud Tasks delivers to. */
  readonly deliveryPath: string;
  readonly logger: Logger;
  private readonly options: CreateDeferredOptions;
  /** CLOUD_TASKS_EMULATOR_HOST as it was when the mode was chosen: start-up may come later (at mount, at the first defer). */
  private readonly emulatorHost = process.env.CLOUD_TASKS_EMULATOR_HOST;
  private readonly resolvedMode: 'embedded' | 'emulator' | 'cloud' | 'custom';
  private runtime?: Promise<Runtime>;
  private embeddedEmulator?: EmulatorHandle;
  private targetUrl?: string | (() => string);
  private readonly authenticator: TaskAuthenticator;

  constructor(options: CreateDeferredOptions = {}) {
    assertOptionKeys('createDeferred()', options, Object.keys(createDeferredKeys));
    this.options = options;
    this.logger = resolveLogger(options.logger, { projectId: () => this.projectId() });
    const telemetry =
      options.telemetry === false ? undefined : options.telemetry === undefined || options.telemetry === 'auto' ? openTelemetry() : options.telemetry;
    this.handlerPath = options.handlerPath ?? DEFAULT_HANDLER_PATH;
    this.sweepPath = options.sweepPath ?? DEFAULT_SWEEP_PATH;
    this.deliveryPath = `${(options.mountPath ?? '').replace(/\/+$/, '')}${this.handlerPath}`;
    this.resolvedMode = this.pickMode();
    const inlineLimitBytes = options.inlineLimitBytes ?? 100 * KIB;
    if (!(inlineLimitBytes > 0 && inlineLimitBytes <= CLOUD_TASKS_MAX_BYTES - 4 * KIB)) {
      throw new CloudDeferError('INVALID_OPTION', "inlineLimitBytes must be between 1 and 1 MiB minus 4 KiB (Cloud Tasks' task size limit less the envelope).");
    }
    const target = options.target;
    if (target && !('appEngine' in target)) this.targetUrl = target.url;
    const stores = options.stores ?? memoryStores();
    const auth = options.auth ?? this.defaultAuthOptions();
    // The embedded default's key set is the in-process emulator's own: safe wherever it was asked for.
    const unsafe = options.auth || this.resolvedMode !== 'embedded' ? unsafeAuthReason(auth) : undefined;
    if (unsafe) {
      throw new CloudDeferError(
        'UNSAFE_CONFIGURATION',
        `Refusing to start: ${unsafe}. Configure auth: { mode: 'oidc', serviceAccountEmail } (Cloud Run, GKE) or run on App Engine with auth: { mode: 'appEngine' }.`,
      );
    }
    if (auth.mode === 'none') this.logger.warn('auth mode "none": the task handler accepts every request; anyone who can reach it can run tasks');
    if (auth.mode === 'appEngine' && auth.dangerouslyTrustHeadersOutsideAppEngineForTests) {
      this.logger.warn(
        'dangerouslyTrustHeadersOutsideAppEngineForTests: X-AppEngine-* headers are trusted outside App Engine; anyone who can reach the handler can run tasks',
      );
    }
    this.engine = new DeferredEngine({
      stores,
      transport: () => this.ready().then((r) => r.transport),
      codec: options.codec ?? createCodec(),
      logger: this.logger,
      target: () => this.engineTarget(),
      defaultQueue: options.defaultQueue ?? 'default',
      inlineLimitBytes,
      retentionMs: options.retentionMs ?? 7 * DAY_MS,
      leaseMs: options.leaseMs ?? 630_000,
      heartbeatLeaseMs: options.heartbeatLeaseMs ?? 30_000,
      queueMaxRetryMs: (queue) => {
        const seconds = options.queues?.find((q) => q.name === queue)?.retryConfig?.maxRetryDurationSeconds;
        return seconds !== undefined && seconds > 0 ? seconds * 1000 : undefined;
      },
      ...(options.storeRetry?.acquireMs !== undefined ? { acquireRetryMs: options.storeRetry.acquireMs } : {}),
      ...(options.storeRetry?.settleMs !== undefined ? { settleRetryMs: options.storeRetry.settleMs } : {}),
      now: options.now ?? Date.now,
      queueMaxAttempts: (queue) => {
        const limit = options.queues?.find((q) => q.name === queue)?.retryConfig?.maxAttempts;
        // 0 or unset means Cloud Tasks' default (100): nothing to copy.
        return limit !== undefined && (limit >= 1 || limit === -1) ? limit : undefined;
      },
      ...countersOption(options.counters, stores),
      ...(telemetry ? { telemetry } : {}),
    });
    for (const queue of options.queues ?? []) this.engine.addQueue(queue.name);
    this.iterations = new Iterations(this.engine, this.logger, options.retentionMs ?? 7 * DAY_MS, options.now ?? Date.now);
    for (const source of options.sources ?? []) this.iterations.register(source);
    this.authenticator = new TaskAuthenticator(auth, () => this.currentUrl());
    this.handler = new TaskHandler({
      engine: this.engine,
      authenticator: this.authenticator,
      ...(this.resolvedMode === 'embedded' ? { hostAllowed: (host: string | undefined) => this.hostAllowed(host) } : {}),
      logger: this.logger,
      handlerPath: this.handlerPath,
      sweepPath: this.sweepPath,
      maxBodyBytes: options.maxBodyBytes ?? 1536 * KIB,
    });
    this.consoleHandler = createConsoleHandler(this, options.console, options.codec);
  }

  /** Which queue transport this instance uses. */
  get mode(): 'embedded' | 'emulator' | 'cloud' | 'custom' {
    return this.resolvedMode;
  }

  /** Per-minute counters of settled attempts, when the stores keep them. */
  get counters(): TaskCounters | undefined {
    return this.engine.counters;
  }

  get stores(): Stores {
    return this.engine.stores;
  }

  /** The in-process emulator, once started (embedded mode only). */
  get emulator(): EmulatorHandle | undefined {
    return this.embeddedEmulator;
  }

  /** Whether a target URL was given (option or setTargetUrl), rather than the local default. */
  hasTargetUrl(): boolean {
    return this.targetUrl !== undefined;
  }

  /** Set the handler URL once the server listens (e.g. on a port chosen by the OS). */
  setTargetUrl(url: string | (() => string)): void {
    this.targetUrl = url;
  }

  task<A extends unknown[]>(name: string, fn: (...args: A) => unknown, defaults?: TaskDefaults): DeferredTask<A> {
    return this.engine.task(name, fn, defaults);
  }

  defer<A extends unknown[]>(task: DeferredTask<A> | ((...args: A) => unknown) | string, args: A, options?: DeferOptions): Promise<TaskInfo> {
    return this.engine.defer(task, args, options);
  }

  /** Defer one task for each item (its arguments, or { args, options }); one result per item, in order. */
  deferMany<A extends unknown[]>(
    task: DeferredTask<A> | ((...args: A) => unknown) | string,
    items: readonly DeferManyItem<A>[],
    options?: DeferManyOptions,
  ): Promise<DeferManyResult[]> {
    return this.engine.deferMany(task, items, options);
  }

  getTask(id: string): Promise<TaskRecord | undefined> {
    return this.engine.getTask(id);
  }

  findTask(query: { reference: string }): Promise<TaskRecord | undefined> {
    return this.engine.findTask(query);
  }

  listTasks(query?: TaskQuery): Promise<TaskPage> {
    return this.engine.listTasks(query);
  }

  cancel(id: string): Promise<TaskRecord | undefined> {
    return this.engine.cancel(id);
  }

  /** Defer a finished task again with the same arguments (see the console's Rerun). */
  rerun(id: string): Promise<TaskInfo> {
    return this.engine.rerun(id);
  }

  /** The queues this app uses, as Cloud Tasks reports them (state, rate limits, retry config). */
  async listQueues(): Promise<QueueInfo[]> {
    const { transport } = await this.ready();
    const infos = await Promise.all(this.engine.queues().map((q) => transport.getQueue(q)));
    return infos.filter((q): q is QueueInfo => q !== undefined);
  }

  /** Tasks Cloud Tasks holds for a queue (scheduled, backing off or being dispatched). */
  async queuedTasks(queue: string): Promise<QueuedTaskInfo[]> {
    return (await this.ready()).transport.listTasks(queue);
  }

  async pauseQueue(queue: string): Promise<void> {
    await (await this.ready()).transport.pauseQueue(queue);
  }

  async resumeQueue(queue: string): Promise<void> {
    await (await this.ready()).transport.resumeQueue(queue);
  }

  /** Drop a queue's tasks in Cloud Tasks and mark their records cancelled (freeing references). */
  purgeQueue(queue: string): Promise<{ marked: number }> {
    return this.engine.purgeQueue(queue);
  }

  drain(options?: DrainOptions): Promise<DrainResult> {
    return this.engine.drain(options);
  }

  /** A mark for drain({ since }): count only tasks settled after this call. */
  mark(): DrainMark {
    return this.engine.mark();
  }

  sweepOutbox(options?: { graceMs?: number; limit?: number }): Promise<{ enqueued: number }> {
    return this.engine.sweepOutbox(options);
  }

  /**
   * What the sweep path runs (Cloud Scheduler, every minute or so): sweepOutbox(), the
   * reconciler (unfinished records whose Cloud Task is gone are enqueued again, or recorded
   * failed with code ABANDONED when no attempts are left) and the store's expiry sweep.
   */
  sweep(options?: { graceMs?: number; limit?: number }): Promise<SweepResult> {
    return this.engine.sweep(options);
  }

  /**
   * Call `callback(item, ...args)` for every item of `source` in `shards` parallel tasks, then
   * `finalize(...args)` once. `source` is an array, or a spec from a registered source.
   */
  deferIteration<Item, A extends unknown[] = []>(
    source: readonly Item[] | SourceSpec,
    callback: DeferredTask<[Item, ...A]>,
    finalize: DeferredTask<A>,
    options?: DeferIterationOptions<A>,
  ): Promise<IterationInfo> {
    return this.iterations.deferIteration(source, callback, finalize, options);
  }

  /** Cancel an iteration: waiting shards are cancelled, running ones stop at their next item, finalize never runs. */
  cancelIteration(id: string): Promise<{ cancelledTasks: number }> {
    return this.iterations.cancel(id);
  }

  /** Skip the item a waiting shard is stuck on (recorded on the shard as a SKIPPED last error). */
  skipIterationItem(id: string, shardIndex: number): Promise<{ skippedKey: string; taskId: string }> {
    return this.iterations.skipItem(id, shardIndex);
  }

  /** Items over all shards of an iteration, when its source can count them (arrays can). */
  iterationItemTotal(id: string): Promise<number | undefined> {
    return this.iterations.itemTotal(id);
  }

  /** Let this process's shards read a source kind (e.g. redisSortedSetSource(client)). */
  registerSource(source: IterationSource): void {
    this.iterations.register(source);
  }

  getIteration(id: string): Promise<IterationRecord | undefined> {
    return this.engine.stores.iterations?.getIteration(id) ?? Promise.resolve(undefined);
  }

  listIterations(query: { cursor?: string; limit?: number } = {}): Promise<{ records: IterationRecord[]; nextCursor?: string }> {
    return this.engine.stores.iterations?.listIterations(query) ?? Promise.resolve({ records: [] });
  }

  /**
   * Check the deployment without changing it: queues and their settings, IAM on the queues, the
   * OIDC service account, target URL and audience, deadlines, the store. See docs/deploy.md.
   */
  doctor(options?: DoctorOptions): Promise<DoctorReport> {
    const { options: config } = this;
    return runDoctor(
      {
        mode: this.resolvedMode,
        ...(this.projectId() ? { projectId: this.projectId()! } : {}),
        location: config.location ?? process.env.CLOUD_TASKS_LOCATION ?? 'us-central1',
        queueConfigs: config.queues ?? [],
        queuesUsed: this.engine.queues(),
        target: () => this.engineTarget(),
        auth: this.authenticator.options,
        handlerPath: this.handlerPath,
        leaseMs: config.leaseMs ?? 630_000,
        stores: this.stores,
        client: () => this.doctorClient(),
        ...(config.transport ? { customTransport: config.transport } : {}),
      },
      options,
    );
  }

  /** A Cloud Tasks client for doctor that, unlike ready(), creates no queue (except the embedded emulator's). */
  private async doctorClient(): Promise<{ client: CloudTasksClient; projectId: string; close: boolean } | undefined> {
    const { CloudTasksClient } = require('@google-cloud/tasks') as typeof import('@google-cloud/tasks');
    const { createEmulatorClient } = require('./emulator/index.js') as typeof import('./emulator/index.js');
    switch (this.resolvedMode) {
      case 'custom':
        return undefined;
      case 'cloud': {
        const client = this.options.client ?? new CloudTasksClient();
        return { client, projectId: this.projectId() ?? (await client.getProjectId()), close: !this.options.client };
      }
      case 'emulator':
        return { client: createEmulatorClient(this.emulatorHost ?? ''), projectId: this.projectId() ?? 'local-project', close: true };
      case 'embedded':
        await this.ready();
        return { client: createEmulatorClient(this.embeddedEmulator!), projectId: this.projectId() ?? 'local-project', close: true };
    }
  }

  /** Start the transport (and the embedded emulator) and create the configured queues. Idempotent. */
  ready(): Promise<Runtime> {
    if (!this.runtime) this.engine.resumeDeliveries();
    this.runtime ??= this.startWithBackoff();
    return this.runtime;
  }

  /** Failed start-ups in a row; the next ready() waits a backoff before trying again. */
  private startFailures = 0;
  private lastStartFailureAt = 0;

  /**
   * A failed start-up (Cloud Tasks unreachable, permission denied) is not cached: the next
   * ready() tries again, after a backoff (100 ms doubling to 30 s) so a storm of defers does not
   * hammer a service that is down. Concurrent callers share one attempt.
   */
  private async startWithBackoff(): Promise<Runtime> {
    if (this.startFailures > 0) {
      const backoffMs = Math.min(100 * 2 ** (this.startFailures - 1), 30_000);
      const waitMs = this.lastStartFailureAt + backoffMs - Date.now();
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
    try {
      const runtime = await this.start();
      this.startFailures = 0;
      return runtime;
    } catch (err) {
      this.startFailures += 1;
      this.lastStartFailureAt = Date.now();
      this.runtime = undefined;
      throw err;
    }
  }

  /**
   * Graceful shutdown (call it on SIGTERM): stop taking deliveries (they are answered 503 and
   * retried elsewhere), let runs under way finish for up to `graceMs` (default 8 s: Cloud Run
   * sends SIGKILL 10 s after SIGTERM), fire the AbortSignal of those that cannot and release
   * their leases so the next delivery runs them at once; then stop the embedded emulator and
   * close the Cloud Tasks client.
   */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    await this.engine.shutdown(options.graceMs ?? 8_000);
    if (!this.runtime) return;
    const runtime = await this.runtime.catch(() => undefined);
    this.runtime = undefined;
    this.engine.forgetTransport();
    if (!runtime) return;
    if (runtime.mode !== 'custom') await runtime.transport.close().catch(() => undefined);
    await runtime.emulator?.stop();
    this.embeddedEmulator = undefined;
  }

  private pickMode(): 'embedded' | 'emulator' | 'cloud' | 'custom' {
    const { options } = this;
    return resolveMode({
      ...(options.mode !== undefined ? { mode: options.mode } : {}),
      hasTransport: options.transport !== undefined,
      hasClient: options.client !== undefined,
      configuredForCloudTasks: options.target !== undefined || options.auth !== undefined,
    });
  }

  /** Embedded mode: loopback literals, localhost, the target URL's host and `allowedHosts`. */
  private hostAllowed(hostHeader: string | undefined): boolean {
    const url = this.currentUrl();
    // Asked on every delivery with the same Host and URL: answer the last question again.
    const last = this.lastHostCheck;
    if (last && last.host === hostHeader && last.url === url) return last.allowed;
    const allowed = [...(this.options.allowedHosts ?? [])];
    if (url && URL.canParse(url)) allowed.push(new URL(url).host);
    const answer = isAllowedHost(hostHeader, allowed);
    this.lastHostCheck = { host: hostHeader, url, allowed: answer };
    return answer;
  }
  private lastHostCheck?: { host: string | undefined; url: string | undefined; allowed: boolean };

  private currentUrl(): string | undefined {
    const url = this.targetUrl ?? (this.resolvedMode === 'cloud' ? undefined : defaultLocalUrl(this.deliveryPath));
    return typeof url === 'function' ? url() : url;
  }

  /** Rebuilt only when the URL changes: it is read on every defer. */
  private cachedTarget?: { url: string | undefined; value: EngineTarget };

  private engineTarget(): EngineTarget {
    const url = this.currentUrl();
    if (this.cachedTarget && this.cachedTarget.url === url) return this.cachedTarget.value;
    const value = this.buildTarget(url);
    this.cachedTarget = { url, value };
    return value;
  }

  private buildTarget(url: string | undefined): EngineTarget {
    const target = this.options.target;
    const appEngine = target && 'appEngine' in target ? target.appEngine : {};
    const http = target && !('appEngine' in target) ? target : {};
    return {
      default: target && 'appEngine' in target ? 'appEngine' : 'http',
      appEngine: { relativeUri: this.deliveryPath, ...appEngine },
      ...(url
        ? {
            http: {
              url,
              ...(this.serviceAccountEmail() ? { serviceAccountEmail: this.serviceAccountEmail()! } : {}),
              ...(http.audience ? { audience: http.audience } : {}),
            },
          }
        : {}),
    };
  }

  private serviceAccountEmail(): string | undefined {
    const target = this.options.target;
    if (target && !('appEngine' in target) && target.serviceAccountEmail) return target.serviceAccountEmail;
    if (this.resolvedMode === 'embedded' || this.resolvedMode === 'emulator') {
      return `cloud-defer-tasks@${this.projectId() ?? 'local-project'}.iam.gserviceaccount.com`;
    }
    return undefined;
  }

  private projectId(): string | undefined {
    return this.options.projectId ?? process.env.GOOGLE_CLOUD_PROJECT ?? process.env.GCLOUD_PROJECT;
  }

  /** The safe default for where we run (see src/runtime-mode.ts). */
  private defaultAuthOptions(): AuthOptions {
    const target = this.options.target;
    return defaultAuth({
      mode: this.resolvedMode,
      appEngineTarget: target !== undefined && 'appEngine' in target,
      serviceAccountEmail: this.serviceAccountEmail(),
      appEngineServiceAccountEmail: appEngineServiceAccountEmail(this.projectId() ?? 'local-project'),
      // Once the emulator runs, its keys: the start-up warm-up checks a delivery before ready() resolves.
      embeddedJwks: () =>
        this.embeddedEmulator ? Promise.resolve(this.embeddedEmulator.jwks as Jwks) : this.ready().then(() => this.embeddedEmulator!.jwks as Jwks),
    });
  }

  private async start(): Promise<Runtime> {
    const { options } = this;
    if (this.resolvedMode === 'custom') return this.withQueues({ transport: options.transport!, mode: 'custom' });
    const projectId = this.projectId() ?? (this.resolvedMode === 'cloud' ? undefined : 'local-project');
    const location = options.location ?? process.env.CLOUD_TASKS_LOCATION ?? 'us-central1';
    // Loaded on first use, so importing cloud-defer stays cheap (and CommonJS: one module instance).
    const { CloudTasksClient } = require('@google-cloud/tasks') as typeof import('@google-cloud/tasks');
    if (this.resolvedMode === 'cloud') {
      const client = options.client ?? new CloudTasksClient();
      const project = projectId ?? (await client.getProjectId());
      return this.withQueues({ transport: new CloudTasksTransport({ client, projectId: project, location }), mode: 'cloud' });
    }
    const { startEmulator, createEmulatorClient } = require('./emulator/index.js') as typeof import('./emulator/index.js');
    if (this.resolvedMode === 'emulator') {
      const address = this.emulatorHost;
      if (!address) throw new CloudDeferError('INVALID_OPTION', 'mode "emulator" needs CLOUD_TASKS_EMULATOR_HOST=host:port.');
      await this.fetchEmulatorKeys();
      const client = createEmulatorClient(address);
      return this.withQueues({
        transport: new CloudTasksTransport({ client, projectId: projectId!, location, queueConfig: (q) => this.declaredQueue(q) }),
        mode: 'emulator',
      });
    }
    const url = this.currentUrl()!;
    const emulatorOptions = { port: 0, projectId, location, appEngineBaseUrl: new URL(url).origin, ...(options.emulator ?? {}) };
    // On its own thread unless a test drives it with a manual clock, which must live on this one.
    const { canRunOnWorker, startEmulatorWorker } = require('./emulator/worker-thread.js') as typeof import('./emulator/worker-thread.js');
    const emulator = canRunOnWorker(emulatorOptions) ? await startEmulatorWorker(emulatorOptions) : await startEmulator(emulatorOptions);
    this.embeddedEmulator = emulator;
    const client = createEmulatorClient(emulator);
    this.logger.info(
      `no Google Cloud configuration found: using the embedded Cloud Tasks emulator at ${emulator.address}, delivering to ${url} (set CLOUD_TASKS_EMULATOR_HOST or deploy with K_SERVICE/GAE_ENV to change this)`,
    );
    const runtime = await this.withQueues({
      transport: new CloudTasksTransport({ client, projectId: projectId!, location, queueConfig: (q) => this.declaredQueue(q) }),
      mode: 'embedded',
      emulator,
    });
    const queue = this.options.defaultQueue ?? 'default';
    const email = this.serviceAccountEmail();
    // The full warm-up (a task delivered) needs the default auth, a real clock and a queue with no rate limit to spend.
    const full = options.auth === undefined && canRunOnWorker(emulatorOptions) && !options.queues?.some((q) => q.name === queue && q.rateLimits);
    await warmUp({
      transport: runtime.transport,
      queue,
      audience: url,
      ...(email ? { serviceAccountEmail: email } : {}),
      ...(full ? { delivery: { authenticator: this.authenticator, handlerPath: this.handlerPath } } : {}),
    });
    return runtime;
  }

  /** A queue this app configured (or, on an emulator, uses): what to recreate if the emulator forgot it. */
  private declaredQueue(name: string): QueueConfig | undefined {
    const configured = (this.options.queues ?? []).find((q) => q.name === name);
    if (configured) return configured;
    return this.engine.queues().includes(name) ? { name } : undefined;
  }

  /** An external emulator's key set must be reachable, or no delivery could be checked. */
  private async fetchEmulatorKeys(): Promise<void> {
    try {
      await this.authenticator.keySet?.load();
    } catch (err) {
      throw new CloudDeferError(
        'UNSAFE_CONFIGURATION',
        `Refusing to start: the emulator's key set could not be fetched (${err instanceof Error ? err.message : String(err)}); check CLOUD_TASKS_EMULATOR_JWKS_URI.`,
        { cause: err },
      );
    }
  }

  private async withQueues(runtime: Runtime): Promise<Runtime> {
    const configs = new Map<string, QueueConfig>();
    // The embedded emulator starts empty: create every queue this app will use.
    if (runtime.mode === 'embedded') for (const name of this.engine.queues()) configs.set(name, { name });
    for (const queue of this.options.queues ?? []) configs.set(queue.name, queue);
    try {
      for (const config of configs.values()) await runtime.transport.ensureQueue(config);
    } catch (err) {
      // A gRPC channel that failed to connect backs off for up to minutes: the retry gets a fresh client.
      if (runtime.mode !== 'custom') await runtime.transport.close().catch(() => undefined);
      await runtime.emulator?.stop().catch(() => undefined);
      throw err;
    }
    return runtime;
  }
}

/** Build one deferred engine. Every option is optional; see CreateDeferredOptions. */
export function createDeferred(options?: CreateDeferredOptions): Deferred {
  return new Deferred(options);
}
