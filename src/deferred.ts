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
  type DrainResult,
  type EngineTarget,
  type TaskInfo,
} from './core/engine.js';
import { CloudDeferError } from './core/errors.js';
import { assertOptionKeys } from './core/option-keys.js';
import { consoleLogger, silentLogger, type Logger } from './core/logger.js';
import type { TaskRecord } from './core/records.js';
import type { TaskDefaults } from './core/registry.js';
import type { Stores, TaskPage, TaskQuery } from './core/stores.js';
import type { QueueConfig, QueueInfo, QueuedTaskInfo, QueueTransport } from './core/transport.js';
import { isProduction, TaskAuthenticator, unsafeAuthReason, type AuthOptions, type Jwks } from './http/auth.js';
import { TaskHandler } from './http/handler.js';
import { createConsoleHandler, type ConsoleHandler, type ConsoleOptions } from './console/console.js';
import { CloudTasksTransport } from './queue/cloud-tasks.js';
import { Iterations, type DeferIterationOptions, type IterationInfo } from './iteration/iteration.js';
import type { IterationRecord, IterationSource, SourceSpec } from './core/iteration.js';
import { memoryStores } from '../adapters/memory/index.js';
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
   * auto (default): CLOUD_TASKS_EMULATOR_HOST set -> that emulator; production (K_SERVICE or
   * GAE_ENV) -> Cloud Tasks; otherwise the embedded emulator, in process.
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
  /** How long a run holds its claim before another delivery may take it over. Default 10 min 30 s. */
  leaseMs?: number;
  /**
   * How long a delivery waits for an unreachable state store: to claim its task before answering
   * 503 (default 10 s), and to record a finished run (default 30 s).
   */
  storeRetry?: { acquireMs?: number; settleMs?: number };
  /** Largest request body the handler reads. Default 1.5 MiB. */
  maxBodyBytes?: number;
  logger?: Logger | false;
  codec?: Codec;
  /** Iteration sources (Redis sorted sets, Datastore queries, ...) the shards of deferIteration may read. */
  sources?: IterationSource[];
  /** Options for the embedded emulator (clock, limits). */
  emulator?: Partial<EmulatorOptions>;
  /** The web console (docs/console.md): on with an authorize hook; on the embedded default, loopback only; `false`: off. */
  console?: ConsoleOptions | false;
  now?: () => number;
}

/** Every option key, typed so a new option must be listed; unknown keys are refused. */
const createDeferredKeys: Record<keyof CreateDeferredOptions, true> = {
  stores: true, mode: true, projectId: true, location: true, client: true, transport: true, target: true,
  handlerPath: true, sweepPath: true, mountPath: true, queues: true, defaultQueue: true, auth: true, inlineLimitBytes: true,
  retentionMs: true, leaseMs: true, storeRetry: true, maxBodyBytes: true, logger: true, codec: true,
  sources: true, emulator: true, console: true, now: true,
};

interface Runtime {
  transport: QueueTransport;
  mode: 'embedded' | 'emulator' | 'cloud' | 'custom';
  emulator?: EmulatorHandle;
}

function defaultLocalUrl(path: string): string {
  return `http://127.0.0.1:${process.env.PORT ?? 3000}${path}`;
}

export class Deferred {
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
  private readonly resolvedMode: 'embedded' | 'emulator' | 'cloud' | 'custom';
  private runtime?: Promise<Runtime>;
  private embeddedEmulator?: EmulatorHandle;
  private targetUrl?: string | (() => string);

  constructor(options: CreateDeferredOptions = {}) {
    assertOptionKeys('createDeferred()', options, Object.keys(createDeferredKeys));
    this.options = options;
    this.logger = options.logger === false ? silentLogger : (options.logger ?? consoleLogger);
    this.handlerPath = options.handlerPath ?? DEFAULT_HANDLER_PATH;
    this.sweepPath = options.sweepPath ?? DEFAULT_SWEEP_PATH;
    this.deliveryPath = `${(options.mountPath ?? '').replace(/\/+$/, '')}${this.handlerPath}`;
    this.resolvedMode = this.pickMode();
    const inlineLimitBytes = options.inlineLimitBytes ?? 100 * KIB;
    if (!(inlineLimitBytes > 0 && inlineLimitBytes <= CLOUD_TASKS_MAX_BYTES - 4 * KIB)) {
      throw new CloudDeferError('INVALID_OPTION', 'inlineLimitBytes must be between 1 and 1 MiB minus 4 KiB (Cloud Tasks\' task size limit less the envelope).');
    }
    const target = options.target;
    if (target && !('appEngine' in target)) this.targetUrl = target.url;
    const stores = options.stores ?? memoryStores();
    const auth = this.authOptions();
    const unsafe = unsafeAuthReason(auth);
    if (unsafe) {
      throw new CloudDeferError('UNSAFE_CONFIGURATION', `Refusing to start in production: ${unsafe}. Configure auth: { mode: 'oidc', serviceAccountEmail } (Cloud Run) or run on App Engine with auth: { mode: 'appEngine' }.`);
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
      ...(options.storeRetry?.acquireMs !== undefined ? { acquireRetryMs: options.storeRetry.acquireMs } : {}),
      ...(options.storeRetry?.settleMs !== undefined ? { settleRetryMs: options.storeRetry.settleMs } : {}),
      now: options.now ?? Date.now,
    });
    for (const queue of options.queues ?? []) this.engine.addQueue(queue.name);
    this.iterations = new Iterations(this.engine, this.logger, options.retentionMs ?? 7 * DAY_MS, options.now ?? Date.now);
    for (const source of options.sources ?? []) this.iterations.register(source);
    this.handler = new TaskHandler({
      engine: this.engine,
      authenticator: new TaskAuthenticator(auth, () => this.currentUrl(), this.resolvedMode === 'embedded'),
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

  get stores(): Stores {
    return this.engine.stores;
  }

  /** The in-process emulator, once started (embedded mode only). */
  get emulator(): EmulatorHandle | undefined {
    return this.embeddedEmulator;
  }

  /** Set the handler URL once the server listens (e.g. on a port chosen by the OS). */
  setTargetUrl(url: string | (() => string)): void {
    this.targetUrl = url;
  }

  task<A extends unknown[]>(name: string, fn: (...args: A) => unknown, defaults?: TaskDefaults): DeferredTask<A> {
    return this.engine.task(name, fn, defaults);
  }

  defer<A extends unknown[]>(
    task: DeferredTask<A> | ((...args: A) => unknown) | string,
    args: A,
    options?: DeferOptions,
  ): Promise<TaskInfo> {
    return this.engine.defer(task, args, options);
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

  sweepOutbox(options?: { graceMs?: number; limit?: number }): Promise<{ enqueued: number }> {
    return this.engine.sweepOutbox(options);
  }

  /** sweepOutbox() plus the store's expiry sweep (Datastore); what the sweep path runs. */
  sweep(options?: { graceMs?: number; limit?: number }): Promise<{ enqueued: number; expired: number }> {
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

  /** Start the transport (and the embedded emulator) and create the configured queues. Idempotent. */
  ready(): Promise<Runtime> {
    this.runtime ??= this.start();
    return this.runtime;
  }

  /** Stop the embedded emulator and close the Cloud Tasks client. */
  async close(): Promise<void> {
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
    if (options.transport) return 'custom';
    const mode = options.mode ?? 'auto';
    if (mode !== 'auto') return mode;
    if (process.env.CLOUD_TASKS_EMULATOR_HOST) return 'emulator';
    if (options.client || isProduction()) return 'cloud';
    return 'embedded';
  }

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

  /** The auth mode asked for, or the safe default for where we run. */
  private authOptions(): AuthOptions {
    if (this.options.auth) return this.options.auth;
    const target = this.options.target;
    const email = this.serviceAccountEmail();
    if (this.resolvedMode === 'embedded') {
      return { mode: 'oidc', serviceAccountEmail: email!, jwks: () => this.ready().then(() => this.embeddedEmulator!.jwks as Jwks) };
    }
    if (this.resolvedMode === 'emulator') {
      const jwksUri = process.env.CLOUD_TASKS_EMULATOR_JWKS_URI;
      if (!jwksUri) return { mode: 'none' };
      return { mode: 'oidc', serviceAccountEmail: email!, jwks: () => fetchJwks(jwksUri) };
    }
    if (target && 'appEngine' in target) return { mode: 'appEngine' };
    if (email) return { mode: 'oidc', serviceAccountEmail: email };
    if (process.env.GAE_ENV) return { mode: 'appEngine' };
    return { mode: 'none' };
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
      const address = process.env.CLOUD_TASKS_EMULATOR_HOST;
      if (!address) throw new CloudDeferError('INVALID_OPTION', 'mode "emulator" needs CLOUD_TASKS_EMULATOR_HOST=host:port.');
      const client = createEmulatorClient(address);
      return this.withQueues({ transport: new CloudTasksTransport({ client, projectId: projectId!, location }), mode: 'emulator' });
    }
    const url = this.currentUrl()!;
    const emulator = await startEmulator({
      port: 0,
      projectId,
      location,
      appEngineBaseUrl: () => new URL(this.currentUrl() ?? url).origin,
      ...(options.emulator ?? {}),
    });
    this.embeddedEmulator = emulator;
    const client = createEmulatorClient(emulator);
    this.logger.info(
      `no Google Cloud configuration found: using the embedded Cloud Tasks emulator at ${emulator.address}, delivering to ${url} (set CLOUD_TASKS_EMULATOR_HOST or deploy with K_SERVICE/GAE_ENV to change this)`,
    );
    return this.withQueues({ transport: new CloudTasksTransport({ client, projectId: projectId!, location }), mode: 'embedded', emulator });
  }

  private async withQueues(runtime: Runtime): Promise<Runtime> {
    const configs = new Map<string, QueueConfig>();
    // The embedded emulator starts empty: create every queue this app will use.
    if (runtime.mode === 'embedded') for (const name of this.engine.queues()) configs.set(name, { name });
    for (const queue of this.options.queues ?? []) configs.set(queue.name, queue);
    for (const config of configs.values()) await runtime.transport.ensureQueue(config);
    return runtime;
  }
}

async function fetchJwks(uri: string): Promise<Jwks> {
  const response = await fetch(uri);
  if (!response.ok) throw new Error(`GET ${uri} answered ${response.status}`);
  return (await response.json()) as Jwks;
}

/** Build one deferred engine. Every option is optional; see CreateDeferredOptions. */
export function createDeferred(options?: CreateDeferredOptions): Deferred {
  return new Deferred(options);
}
