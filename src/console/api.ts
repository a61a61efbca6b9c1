/**
 * The console's JSON API (framework-neutral): reads are GETs, actions are POSTs that have passed
 * the same-origin and CSRF checks (see console.ts). Every action is logged with its principal.
 */
import type { DeferredAdmin as Deferred } from '../core/admin.js';
import type { Codec } from '../core/codec.js';
import { CloudDeferError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { isFinished, PENDING_STATUSES, TASK_STATUSES, type TaskRecord, type TaskStatus } from '../core/records.js';
import { QUEUE_ID } from '../core/transport.js';
import type { TaskQuery } from '../core/stores.js';
import type { NeutralResponse } from '../http/handler.js';
import { principalLabel, sessionToken, CSRF_HEADER } from './guard.js';
import type { ConsolePrincipal, ConsoleRequest } from './options.js';
import { queueFigures, queueView, type QueueView } from './stats.js';
import { iterationDetail, iterationSummary, taskDetail, taskSummary, type IterationDetail, type IterationSummary, type TaskSummary } from './views.js';

export type ConsoleErrorCode =
  | 'BAD_REQUEST'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'NOT_FINISHED'
  | 'NOT_PENDING'
  | 'REFERENCE_HELD'
  | 'PAYLOAD_MISSING'
  | 'CROSS_SITE'
  | 'CSRF'
  | 'UNAVAILABLE'
  | 'INTERNAL';

/** An API refusal: the HTTP status and a stable code the page (or a script) can branch on. */
export class ConsoleApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ConsoleErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ConsoleApiError';
  }
}

export interface ConsoleApiSettings {
  deferred: Deferred;
  codec: Codec;
  logger: Logger;
  statsScanLimit: number;
  pollIntervalMs: number;
  now: () => number;
}

const STATUSES = TASK_STATUSES;
const QUEUE_NAME = QUEUE_ID;
const MAX_FILTER_LENGTH = 1000;
const DEFAULT_PAGE = 25;
const MAX_PAGE = 100;
/** Concurrent page refreshes share one computation of the queue figures for this long. */
const FIGURES_CACHE_MS = 1000;

export const json = (status: number, value: unknown, headers: Record<string, string> = {}): NeutralResponse => ({
  status,
  headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers },
  body: JSON.stringify(value),
});

type Action = 'rerun' | 'cancel' | 'pause' | 'resume' | 'purge';

export class ConsoleApi {
  private figures?: { at: number; views: Promise<QueueView[]> };

  constructor(private readonly settings: ConsoleApiSettings) {}

  /** `segments` are the decoded path segments after `api/`. */
  async handle(request: ConsoleRequest, segments: string[], principal: ConsolePrincipal): Promise<NeutralResponse> {
    const read = request.method === 'GET' || request.method === 'HEAD';
    const query = new URLSearchParams(request.query ?? '');
    const [first, id, action, ...extra] = segments;
    if (extra.length > 0) throw notFound();
    const only = (method: 'GET' | 'POST'): void => {
      if (method === 'GET' ? !read : request.method !== 'POST') {
        throw new ConsoleApiError(405, 'METHOD_NOT_ALLOWED', `Use ${method === 'GET' ? 'GET' : 'POST'} here.`);
      }
    };
    switch (first) {
      case 'session':
        if (id !== undefined) break;
        only('GET');
        return this.session(request, principal);
      case 'queues':
        if (id === undefined) {
          only('GET');
          return json(200, { queues: await this.queues(query.get('figures') !== '0'), scanLimit: this.settings.statsScanLimit });
        }
        checkQueueName(id);
        if (action === 'tasks') {
          only('GET');
          return json(200, await this.tasks(query, id));
        }
        if (action === 'pause' || action === 'resume' || action === 'purge') {
          only('POST');
          return this.queueAction(action, id, principal);
        }
        break;
      case 'tasks':
        if (id === undefined) {
          only('GET');
          const queue = query.get('queue') || undefined;
          if (queue !== undefined) checkQueueName(queue);
          return json(200, await this.tasks(query, queue));
        }
        if (action === undefined) {
          only('GET');
          return json(200, { task: taskDetail(await this.record(id), this.settings.codec) });
        }
        if (action === 'rerun' || action === 'cancel') {
          only('POST');
          return this.taskAction(action, id, principal);
        }
        break;
      case 'iterations':
        if (action !== undefined) break;
        only('GET');
        return id === undefined ? json(200, await this.iterations(query)) : json(200, { iteration: await this.iteration(id) });
    }
    throw notFound();
  }

  private session(request: ConsoleRequest, principal: ConsolePrincipal): NeutralResponse {
    const { token, setCookie } = sessionToken(request);
    return json(
      200,
      {
        principal: principalLabel(principal),
        csrfToken: token,
        csrfHeader: CSRF_HEADER,
        pollIntervalMs: this.settings.pollIntervalMs,
        mode: this.settings.deferred.mode,
        scanLimit: this.settings.statsScanLimit,
      },
      setCookie ? { 'Set-Cookie': setCookie } : {},
    );
  }

  private async queues(withFigures: boolean): Promise<QueueView[]> {
    const { deferred, statsScanLimit, now } = this.settings;
    if (!withFigures) return (await deferred.listQueues()).map((info) => queueView(info));
    const cached = this.figures;
    if (cached && now() - cached.at < FIGURES_CACHE_MS) return cached.views;
    const at = now();
    const views = deferred
      .listQueues()
      .then((infos) => Promise.all(infos.map(async (info) => queueView(info, await queueFigures(deferred, info.name, statsScanLimit, at)))));
    this.figures = { at, views };
    views.catch(() => (this.figures = undefined));
    return views;
  }

  private async tasks(query: URLSearchParams, queue: string | undefined): Promise<{ tasks: TaskSummary[]; nextCursor?: string }> {
    const status = query.get('status') || undefined;
    if (status !== undefined && !STATUSES.includes(status as TaskStatus)) {
      throw new ConsoleApiError(400, 'BAD_REQUEST', `status must be one of ${STATUSES.join(', ')}.`);
    }
    const filter = (name: 'taskName' | 'reference' | 'cursor'): string | undefined => {
      const value = query.get(name) || undefined;
      if (value !== undefined && value.length > MAX_FILTER_LENGTH) throw new ConsoleApiError(400, 'BAD_REQUEST', `${name} is too long.`);
      return value;
    };
    const limitText = query.get('limit');
    const limit = limitText === null ? DEFAULT_PAGE : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new ConsoleApiError(400, 'BAD_REQUEST', `limit must be a whole number from 1 to ${MAX_PAGE}.`);
    const taskName = filter('taskName');
    const reference = filter('reference');
    const cursor = filter('cursor');
    const taskQuery: TaskQuery = {
      limit,
      ...(queue ? { queue } : {}),
      ...(status ? { status: status as TaskStatus } : {}),
      ...(taskName ? { taskName } : {}),
      ...(reference ? { reference } : {}),
      ...(cursor ? { cursor } : {}),
    };
    const page = await this.settings.deferred.listTasks(taskQuery);
    return { tasks: page.records.map(taskSummary), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  }

  private async record(id: string): Promise<TaskRecord> {
    const record = await this.settings.deferred.getTask(id);
    if (!record) throw notFound(`No task ${id} (it may have expired).`);
    return record;
  }

  private async iterations(query: URLSearchParams): Promise<{ iterations: IterationSummary[]; nextCursor?: string }> {
    const cursor = query.get('cursor') || undefined;
    const page = await this.settings.deferred.listIterations({ limit: DEFAULT_PAGE, ...(cursor ? { cursor } : {}) });
    return { iterations: page.records.map(iterationSummary), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  }

  private async iteration(id: string): Promise<IterationDetail> {
    const record = await this.settings.deferred.getIteration(id);
    if (!record) throw notFound(`No iteration ${id} (it may have finished and been deleted).`);
    return iterationDetail(record);
  }

  private audit(action: Action, principal: ConsolePrincipal, target: string): void {
    this.settings.logger.info('console action', { action, principal, target });
  }

  private async taskAction(action: 'rerun' | 'cancel', id: string, principal: ConsolePrincipal): Promise<NeutralResponse> {
    const record = await this.record(id);
    if (action === 'rerun' && !isFinished(record.status)) {
      throw new ConsoleApiError(400, 'NOT_FINISHED', `Task ${id} is ${record.status}; only a finished task can be rerun.`);
    }
    if (action === 'cancel' && !PENDING_STATUSES.includes(record.status)) {
      throw new ConsoleApiError(400, 'NOT_PENDING', `Task ${id} is ${record.status}; only a queued or retrying task can be cancelled.`);
    }
    this.audit(action, principal, `task:${id}`);
    this.figures = undefined;
    const { deferred } = this.settings;
    if (action === 'cancel') {
      const cancelled = await deferred.cancel(id);
      if (!cancelled) throw new ConsoleApiError(400, 'NOT_PENDING', `Task ${id} started or finished meanwhile; it was not cancelled.`);
      return json(200, { task: taskSummary(cancelled) });
    }
    const info = await deferred.rerun(id);
    const created = await deferred.getTask(info.id);
    return json(201, { rerunOf: id, task: created ? taskSummary(created) : { id: info.id, status: info.status } });
  }

  private async queueAction(action: 'pause' | 'resume' | 'purge', queue: string, principal: ConsolePrincipal): Promise<NeutralResponse> {
    const { deferred } = this.settings;
    // Only the app's own queues: the console is no remote control for the whole project.
    const known = (await deferred.listQueues()).some((q) => q.name === queue);
    if (!known) throw notFound(`No queue ${queue} in this app.`);
    this.audit(action, principal, `queue:${queue}`);
    this.figures = undefined;
    if (action === 'purge') return json(200, { queue, ...(await deferred.purgeQueue(queue)) });
    await (action === 'pause' ? deferred.pauseQueue(queue) : deferred.resumeQueue(queue));
    const info = (await deferred.listQueues()).find((q) => q.name === queue);
    return json(200, { queue: info ? queueView(info) : { name: queue } });
  }
}

function notFound(message = 'Not found.'): ConsoleApiError {
  return new ConsoleApiError(404, 'NOT_FOUND', message);
}

function checkQueueName(name: string): void {
  if (!QUEUE_NAME.test(name)) throw new ConsoleApiError(400, 'BAD_REQUEST', 'A queue name is 1 to 100 letters, digits or hyphens.');
}

/** The API answer for an error thrown by the engine or the API itself. */
export function errorResponse(err: unknown, logger: Logger): NeutralResponse {
  if (err instanceof ConsoleApiError) return json(err.status, { error: { code: err.code, message: err.message } });
  if (err instanceof CloudDeferError) {
    const mapped: Partial<Record<CloudDeferError['code'], [number, ConsoleErrorCode]>> = {
      NOT_FOUND: [404, 'NOT_FOUND'],
      INVALID_STATE: [400, 'NOT_FINISHED'],
      DUPLICATE_REFERENCE: [409, 'REFERENCE_HELD'],
      PAYLOAD_MISSING: [410, 'PAYLOAD_MISSING'],
      INVALID_OPTION: [400, 'BAD_REQUEST'],
      UNREGISTERED_TASK: [400, 'BAD_REQUEST'],
      STORE_UNAVAILABLE: [503, 'UNAVAILABLE'],
    };
    const [status, code] = mapped[err.code] ?? [500, 'INTERNAL'];
    if (status >= 500) logger.error('console request failed', { code: err.code, error: err.message });
    return json(status, { error: { code, message: err.message } });
  }
  logger.error('console request failed', { error: err instanceof Error ? err.message : String(err) });
  return json(500, { error: { code: 'INTERNAL', message: 'The console could not answer; see the server log.' } });
}
