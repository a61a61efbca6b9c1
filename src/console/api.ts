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
import { queueStats } from './charts.js';
import type { QueuedTaskInfo } from '../core/transport.js';
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
  | 'NOT_IN_QUEUE'
  | 'WRONG_STATE'
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

type Action = 'rerun' | 'cancel' | 'run' | 'pause' | 'resume' | 'purge' | BulkAction | IterationAction;
type BulkAction = 'rerun-failed' | 'cancel-pending' | 'delete-finished';
type IterationAction = 'cancel-iteration' | 'skip-item';
const BULK_ACTIONS: readonly BulkAction[] = ['rerun-failed', 'cancel-pending', 'delete-finished'];
/** A bulk action handles at most this many records per call (it says when more are left). */
const DEFAULT_BULK_LIMIT = 100;
const MAX_BULK_LIMIT = 500;
/** Task names the library defers for itself (iteration start, shards, finalize). */
export const INTERNAL_TASK_PREFIX = 'cloud-defer.';
/** Pages read to fill one page of the task list when internal tasks are hidden. */
const MAX_FILL_PAGES = 10;

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
        if (action === 'stats') {
          only('GET');
          return json(200, { stats: await queueStats(this.settings.deferred, id, this.settings.statsScanLimit, this.settings.now()) });
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
          const record = await this.record(id);
          const held = PENDING_STATUSES.includes(record.status) ? await this.cloudTaskOf(record) : undefined;
          return json(200, { task: { ...taskDetail(record, this.settings.codec), ...(held ? { cloudTask: held } : {}), canRunNow: held !== undefined } });
        }
        if (action === 'run') {
          only('POST');
          return this.runNow(id, principal);
        }
        if (action === 'rerun' || action === 'cancel') {
          only('POST');
          return this.taskAction(action, id, principal);
        }
        break;
      case 'bulk':
        if (id === undefined || action !== undefined || !BULK_ACTIONS.includes(id as BulkAction)) break;
        only('POST');
        return this.bulk(id as BulkAction, query, principal);
      case 'iterations':
        if (id !== undefined && (action === 'cancel' || action === 'skip')) {
          only('POST');
          return this.iterationAction(action, id, query, principal);
        }
        if (action !== undefined) break;
        only('GET');
        if (id === undefined) return json(200, await this.iterations(query));
        return json(200, {
          iteration: await this.iteration(id),
          tasks: await this.iterationTasks(id),
          itemTotal: (await this.settings.deferred.iterationItemTotal(id)) ?? null,
        });
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

  private async tasks(
    query: URLSearchParams,
    queue: string | undefined,
  ): Promise<{ tasks: TaskSummary[]; nextCursor?: string; hiddenInternal?: number; search?: { scanned: number; complete: boolean } }> {
    const taskQuery = this.taskQuery(query, queue);
    const find = filterText(query, 'q');
    if (find !== undefined) return { tasks: (await this.findExact(find, queue)).map(taskSummary) };
    const argsText = filterText(query, 'args');
    if (argsText !== undefined) return this.searchArgs(taskQuery, argsText);
    // Internal tasks are hidden unless asked for, or unless the filter names one.
    const hide = query.get('internal') !== '1' && !taskQuery.taskName?.startsWith(INTERNAL_TASK_PREFIX);
    const { deferred } = this.settings;
    if (!hide) {
      const page = await deferred.listTasks(taskQuery);
      return { tasks: page.records.map(taskSummary), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    }
    // Whole pages only, so that the cursor stays exact; a page may then hold a few more rows.
    const shown: TaskRecord[] = [];
    let hidden = 0;
    let cursor = taskQuery.cursor;
    for (let pages = 0; pages < MAX_FILL_PAGES; pages += 1) {
      const page = await deferred.listTasks({ ...taskQuery, ...(cursor ? { cursor } : {}) });
      for (const record of page.records) {
        if (record.taskName.startsWith(INTERNAL_TASK_PREFIX)) hidden += 1;
        else shown.push(record);
      }
      cursor = page.nextCursor;
      if (!cursor || shown.length >= (taskQuery.limit ?? DEFAULT_PAGE)) break;
    }
    return { tasks: shown.map(taskSummary), ...(cursor ? { nextCursor: cursor } : {}), hiddenInternal: hidden };
  }

  private taskQuery(query: URLSearchParams, queue: string | undefined, defaultLimit = DEFAULT_PAGE, maxLimit = MAX_PAGE): TaskQuery {
    const status = query.get('status') || undefined;
    if (status !== undefined && !STATUSES.includes(status as TaskStatus)) {
      throw new ConsoleApiError(400, 'BAD_REQUEST', `status must be one of ${STATUSES.join(', ')}.`);
    }
    const limitText = query.get('limit');
    const limit = limitText === null ? defaultLimit : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit)
      throw new ConsoleApiError(400, 'BAD_REQUEST', `limit must be a whole number from 1 to ${maxLimit}.`);
    const taskName = filterText(query, 'taskName');
    const reference = filterText(query, 'reference');
    const cursor = filterText(query, 'cursor');
    return {
      limit,
      ...(queue ? { queue } : {}),
      ...(status ? { status: status as TaskStatus } : {}),
      ...(taskName ? { taskName } : {}),
      ...(reference ? { reference } : {}),
      ...(cursor ? { cursor } : {}),
    };
  }

  /** Exact look-ups: a task id, a reference, or a Cloud Tasks task name (full or its last segment). */
  private async findExact(text: string, queue: string | undefined): Promise<TaskRecord[]> {
    const { deferred } = this.settings;
    const found = new Map<string, TaskRecord>();
    const byId = await deferred.getTask(text);
    if (byId) found.set(byId.id, byId);
    const byReference = await deferred.findTask({ reference: text });
    if (byReference) found.set(byReference.id, byReference);
    // Cloud Tasks names are known only while Cloud Tasks holds the task (see docs/console.md).
    if (/^[A-Za-z0-9_/-]{1,1000}$/.test(text)) {
      const queues = queue ? [queue] : (await deferred.listQueues()).map((q) => q.name);
      for (const name of queues) {
        const held = await deferred.queuedTasks(name).catch(() => [] as QueuedTaskInfo[]);
        const match = held.find((t) => t.name === text || t.name.endsWith(`/tasks/${text}`));
        const record = match?.taskId ? await deferred.getTask(match.taskId) : undefined;
        if (record) found.set(record.id, record);
      }
    }
    return [...found.values()].filter((r) => !queue || r.queue === queue);
  }

  /** Argument text in the newest records that carry their arguments inline, at most statsScanLimit of them. */
  private async searchArgs(taskQuery: TaskQuery, text: string): Promise<{ tasks: TaskSummary[]; search: { scanned: number; complete: boolean } }> {
    const { deferred, statsScanLimit } = this.settings;
    const { cursor: _ignored, limit = DEFAULT_PAGE, ...filters } = taskQuery;
    const matches: TaskRecord[] = [];
    let scanned = 0;
    let cursor: string | undefined;
    do {
      const page = await deferred.listTasks({ ...filters, limit: Math.min(1000, statsScanLimit - scanned), ...(cursor ? { cursor } : {}) });
      scanned += page.records.length;
      for (const record of page.records) if (record.argsJson?.includes(text) && matches.length < limit) matches.push(record);
      cursor = page.nextCursor;
    } while (cursor && scanned < statsScanLimit && matches.length < limit);
    return { tasks: matches.map(taskSummary), search: { scanned, complete: cursor === undefined } };
  }

  /** The Cloud Task that will deliver this record next, if Cloud Tasks holds one. */
  private async cloudTaskOf(record: TaskRecord): Promise<QueuedTaskInfo | undefined> {
    const held = await this.settings.deferred.queuedTasks(record.queue).catch(() => [] as QueuedTaskInfo[]);
    const mine = held.filter((t) => t.taskId === record.id);
    mine.sort((a, b) => (a.scheduleTime ?? 0) - (b.scheduleTime ?? 0));
    return mine[0];
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

  /** Run now: Cloud Tasks' RunTask on the task that holds the record (even on a paused queue, or during a backoff). */
  private async runNow(id: string, principal: ConsolePrincipal): Promise<NeutralResponse> {
    const record = await this.record(id);
    if (!PENDING_STATUSES.includes(record.status)) {
      throw new ConsoleApiError(400, 'NOT_PENDING', `Task ${id} is ${record.status}; only a queued or retrying task can be run now.`);
    }
    const held = await this.cloudTaskOf(record);
    if (!held)
      throw new ConsoleApiError(409, 'NOT_IN_QUEUE', `Cloud Tasks holds no task for ${id} right now (it may be being dispatched); try again in a moment.`);
    this.audit('run', principal, `task:${id}`);
    this.figures = undefined;
    const { transport } = await this.settings.deferred.ready();
    await transport.runTask(held.name);
    return json(202, { task: taskSummary(record), cloudTaskName: held.name });
  }

  /**
   * A bulk action over the current filter (queue, task name), at most `limit` records per call,
   * newest first: it reports how many it did and whether matching records are left.
   */
  private async bulk(action: BulkAction, query: URLSearchParams, principal: ConsolePrincipal): Promise<NeutralResponse> {
    const queue = query.get('queue') || undefined;
    if (queue !== undefined) checkQueueName(queue);
    const base = this.taskQuery(query, queue, DEFAULT_BULK_LIMIT, MAX_BULK_LIMIT);
    const { cursor: _ignored, limit = DEFAULT_BULK_LIMIT, status: asked, ...filters } = base;
    const statuses: TaskStatus[] =
      action === 'rerun-failed' ? ['failed'] : action === 'cancel-pending' ? [...PENDING_STATUSES] : asked ? [asked] : ['succeeded', 'failed', 'cancelled'];
    if (action === 'delete-finished' && !statuses.every(isFinished)) {
      throw new ConsoleApiError(400, 'BAD_REQUEST', 'delete-finished deletes only succeeded, failed or cancelled records.');
    }
    this.audit(
      action,
      principal,
      `bulk:${new URLSearchParams({ ...(queue ? { queue } : {}), ...(filters.taskName ? { taskName: filters.taskName } : {}), status: statuses.join(',') })}`,
    );
    this.figures = undefined;
    const { deferred } = this.settings;
    const state = deferred.stores.state;
    // The cursor names the status being walked and the position in it: a rerun's new task is
    // newer than the cursor, so a second call never reruns the same failure twice.
    const [startText, innerText] = splitCursor(base.cursor);
    let done = 0;
    let skipped = 0;
    let nextCursor: string | undefined;
    const errors: Array<{ id: string; code: string; message: string }> = [];
    for (let si = startText; si < statuses.length && !nextCursor; si += 1) {
      let cursor = si === startText ? innerText : undefined;
      do {
        const room = limit - done - skipped;
        if (room <= 0) {
          nextCursor = `${si}:${cursor ?? ''}`;
          break;
        }
        const page = await deferred.listTasks({ ...filters, status: statuses[si]!, limit: room, ...(cursor ? { cursor } : {}) });
        for (const record of page.records) {
          try {
            if (action === 'rerun-failed') {
              await deferred.rerun(record.id);
              done += 1;
            } else if (action === 'cancel-pending') {
              if (await deferred.cancel(record.id)) done += 1;
              else skipped += 1;
            } else {
              await state.deleteTask(record.id);
              if (record.payloadRef) await deferred.stores.payloads.delete(record.payloadRef).catch(() => undefined);
              done += 1;
            }
          } catch (err) {
            skipped += 1;
            errors.push({
              id: record.id,
              code: err instanceof CloudDeferError ? err.code : 'INTERNAL',
              message: err instanceof Error ? err.message : String(err),
            });
          }
        }
        cursor = page.nextCursor;
      } while (cursor);
    }
    const more = nextCursor !== undefined;
    return json(200, { action, done, skipped, more, limit, ...(nextCursor ? { nextCursor } : {}), errors: errors.slice(0, 20) });
  }

  private async iterationAction(action: 'cancel' | 'skip', id: string, query: URLSearchParams, principal: ConsolePrincipal): Promise<NeutralResponse> {
    try {
      return await this.iterationActionUnchecked(action, id, query, principal);
    } catch (err) {
      if (err instanceof CloudDeferError && err.code === 'INVALID_STATE') throw new ConsoleApiError(409, 'WRONG_STATE', err.message);
      throw err;
    }
  }

  private async iterationActionUnchecked(action: 'cancel' | 'skip', id: string, query: URLSearchParams, principal: ConsolePrincipal): Promise<NeutralResponse> {
    const { deferred } = this.settings;
    if (action === 'cancel') {
      this.audit('cancel-iteration', principal, `iteration:${id}`);
      return json(200, { iteration: id, ...(await deferred.cancelIteration(id)) });
    }
    const shard = Number(query.get('shard'));
    if (query.get('shard') === null || !Number.isInteger(shard) || shard < 0)
      throw new ConsoleApiError(400, 'BAD_REQUEST', 'shard must be a shard index (a whole number >= 0).');
    this.audit('skip-item', principal, `iteration:${id}/shard:${shard}`);
    return json(200, { iteration: id, shard, ...(await deferred.skipIterationItem(id, shard)) });
  }

  private async iterationTasks(id: string): Promise<TaskSummary[]> {
    const page = await this.settings.deferred.listTasks({ iterationId: id, limit: MAX_PAGE });
    return page.records.map(taskSummary);
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

/** A bulk cursor "statusIndex:storeCursor"; empty means from the start. */
function splitCursor(cursor: string | undefined): [number, string | undefined] {
  if (!cursor) return [0, undefined];
  const colon = cursor.indexOf(':');
  const index = Number(cursor.slice(0, colon));
  if (colon < 1 || !Number.isInteger(index) || index < 0 || index > 5)
    throw new ConsoleApiError(400, 'BAD_REQUEST', 'cursor is not one a bulk action returned.');
  return [index, cursor.slice(colon + 1) || undefined];
}

function filterText(query: URLSearchParams, name: string): string | undefined {
  const value = query.get(name) || undefined;
  if (value !== undefined && value.length > MAX_FILTER_LENGTH) throw new ConsoleApiError(400, 'BAD_REQUEST', `${name} is too long.`);
  return value;
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
