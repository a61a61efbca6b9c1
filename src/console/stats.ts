/**
 * Live figures of a queue, from what cloud-defer can see without a metrics backend: Cloud Tasks'
 * own view of the queue (queuedTasks) and bounded scans of the task records (listTasks, newest
 * first, at most `scanLimit` records per status). A scan that hits the bound makes the figures
 * approximate, and says so.
 */
import type { DeferredAdmin as Deferred } from '../core/admin.js';
import type { TaskRecord, TaskStatus } from '../core/records.js';
import type { QueueInfo, RateLimits, RetryConfig } from '../core/transport.js';

export const DEFAULT_STATS_SCAN_LIMIT = 1000;
const PAGE_LIMIT = 1000; // the most one listTasks page may hold
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

export interface QueueFigures {
  /** Records queued or retrying (waiting for a delivery). */
  pending: number;
  running: number;
  /** Attempts that ended in the last minute (successes, failures and retries). */
  executedLastMinute: number;
  /** Tasks that failed for good in the last hour. */
  failedLastHour: number;
  /** Earliest ETA of a task still waiting (Cloud Tasks' schedule time or the record's ETA), epoch ms. */
  oldestEta?: number;
  /** Tasks Cloud Tasks holds for the queue (scheduled, backing off or being dispatched). */
  inCloudTasks: number;
  /** A scan reached the bound: the counts are lower bounds. */
  approximate: boolean;
}

export interface QueueView {
  name: string;
  state: QueueInfo['state'];
  paused: boolean;
  rateLimits?: RateLimits;
  retryConfig?: RetryConfig;
  figures?: QueueFigures;
}

async function scan(deferred: Deferred, queue: string, status: TaskStatus, limit: number): Promise<{ records: TaskRecord[]; complete: boolean }> {
  const records: TaskRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await deferred.listTasks({ queue, status, limit: Math.min(PAGE_LIMIT, limit - records.length), ...(cursor ? { cursor } : {}) });
    records.push(...page.records);
    cursor = page.nextCursor;
  } while (cursor && records.length < limit);
  return { records, complete: cursor === undefined };
}

function attemptsEndedSince(records: TaskRecord[], since: number): number {
  let n = 0;
  for (const record of records) for (const attempt of record.history) if (attempt.at + attempt.durationMs >= since) n += 1;
  return n;
}

export async function queueFigures(deferred: Deferred, queue: string, scanLimit: number, now: number): Promise<QueueFigures> {
  const statuses: TaskStatus[] = ['queued', 'retrying', 'running', 'succeeded', 'failed'];
  const [held, scans] = await Promise.all([deferred.queuedTasks(queue), Promise.all(statuses.map((s) => scan(deferred, queue, s, scanLimit)))]);
  const [queued, retrying, running, , failed] = scans;
  const pendingRecords = [...queued.records, ...retrying.records];
  const etas = [...held.map((t) => t.scheduleTime).filter((t): t is number => t !== undefined), ...pendingRecords.map((r) => r.eta)];
  return {
    pending: pendingRecords.length,
    running: running.records.length,
    executedLastMinute: attemptsEndedSince(
      scans.flatMap((s) => s.records),
      now - MINUTE_MS,
    ),
    failedLastHour: failed.records.filter((r) => (r.finishedAt ?? 0) >= now - HOUR_MS).length,
    ...(etas.length > 0 ? { oldestEta: Math.min(...etas) } : {}),
    inCloudTasks: held.length,
    approximate: scans.some((s) => !s.complete),
  };
}

export function queueView(info: QueueInfo, figures?: QueueFigures): QueueView {
  return {
    name: info.name,
    state: info.state,
    paused: info.state === 'PAUSED',
    ...(info.rateLimits ? { rateLimits: info.rateLimits } : {}),
    ...(info.retryConfig ? { retryConfig: info.retryConfig } : {}),
    ...(figures ? { figures } : {}),
  };
}
