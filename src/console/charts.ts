/**
 * Totals and per-minute series of a queue for the console's charts: from the engine's counters
 * when it has them (no record is read), else from bounded scans of the records' attempt history.
 */
import type { DeferredAdmin as Deferred } from '../core/admin.js';
import {
  DURATION_BOUNDS_MS,
  durationBucket,
  durationQuantile,
  emptyBucket,
  HOUR_MS,
  MINUTE_MS,
  resolutionMs,
  type CounterBucket,
  type CounterResolution,
} from '../core/counters.js';
import type { TaskRecord, TaskStatus } from '../core/records.js';

export type StatsWindow = 'hour' | 'day';

export interface SeriesPoint {
  start: number;
  succeeded: number;
  failed: number;
  retrying: number;
}

export interface WindowStats {
  window: StatsWindow;
  resolution: CounterResolution;
  from: number;
  to: number;
  /** One point per minute (hour window) or per hour (day window), oldest first, zeros included. */
  series: SeriesPoint[];
  totals: { runs: number; succeeded: number; failures: number; retries: number; p50Ms?: number; p95Ms?: number };
}

export interface QueueStats {
  queue: string;
  /** Where the figures come from: the counters, or a bounded scan of the records. */
  source: 'counters' | 'records';
  /** A records scan reached its bound: the figures are lower bounds. */
  approximate: boolean;
  hour: WindowStats;
  day: WindowStats;
  /** Age of the oldest queued or retrying record seen (bounded scan, newest first). */
  oldestPendingAgeMs?: number;
  pending: number;
  durationBoundsMs: readonly number[];
}

const WINDOWS: Record<StatsWindow, { resolution: CounterResolution; span: number }> = {
  hour: { resolution: 'minute', span: HOUR_MS },
  day: { resolution: 'hour', span: 24 * HOUR_MS },
};

async function scanStatus(deferred: Deferred, queue: string, status: TaskStatus, limit: number): Promise<{ records: TaskRecord[]; complete: boolean }> {
  const records: TaskRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await deferred.listTasks({ queue, status, limit: Math.min(1000, limit - records.length), ...(cursor ? { cursor } : {}) });
    records.push(...page.records);
    cursor = page.nextCursor;
  } while (cursor && records.length < limit);
  return { records, complete: cursor === undefined };
}

function summarise(window: StatsWindow, to: number, buckets: CounterBucket[]): WindowStats {
  const { resolution, span } = WINDOWS[window];
  const step = resolutionMs(resolution);
  const end = Math.floor(to / step) * step + step; // the current, partial bucket is included
  const from = end - span;
  const byStart = new Map(buckets.map((b) => [b.start, b]));
  const series: SeriesPoint[] = [];
  const durations = new Array<number>(DURATION_BOUNDS_MS.length + 1).fill(0);
  let succeeded = 0;
  let failures = 0;
  let retries = 0;
  for (let start = from; start < end; start += step) {
    const b = byStart.get(start);
    series.push({ start, succeeded: b?.succeeded ?? 0, failed: b?.failed ?? 0, retrying: b?.retrying ?? 0 });
    if (!b) continue;
    succeeded += b.succeeded;
    failures += b.failed;
    retries += b.retrying;
    for (let i = 0; i < b.durations.length; i += 1) durations[i]! += b.durations[i]!;
  }
  const p50 = durationQuantile(durations, 0.5);
  const p95 = durationQuantile(durations, 0.95);
  return {
    window,
    resolution,
    from,
    to: end,
    series,
    totals: {
      runs: succeeded + failures + retries,
      succeeded,
      failures,
      retries,
      ...(p50 !== undefined ? { p50Ms: p50 } : {}),
      ...(p95 !== undefined ? { p95Ms: p95 } : {}),
    },
  };
}

/** Buckets rebuilt from the records' attempt history (each attempt counted when it ended). */
function bucketsFromRecords(records: TaskRecord[], resolution: CounterResolution, from: number): CounterBucket[] {
  const step = resolutionMs(resolution);
  const buckets = new Map<number, CounterBucket>();
  for (const record of records) {
    for (const attempt of record.history) {
      const ended = attempt.at + attempt.durationMs;
      if (ended < from) continue;
      const start = Math.floor(ended / step) * step;
      const bucket = buckets.get(start) ?? emptyBucket(start);
      buckets.set(start, bucket);
      bucket[attempt.outcome] += 1;
      bucket.durations[durationBucket(attempt.durationMs)]! += 1;
    }
  }
  return [...buckets.values()];
}

export async function queueStats(deferred: Deferred, queue: string, scanLimit: number, now: number): Promise<QueueStats> {
  const counters = deferred.counters;
  const [queued, retrying] = await Promise.all([scanStatus(deferred, queue, 'queued', scanLimit), scanStatus(deferred, queue, 'retrying', scanLimit)]);
  const pendingRecords = [...queued.records, ...retrying.records];
  const oldest = pendingRecords.length > 0 ? Math.min(...pendingRecords.map((r) => r.createdAt)) : undefined;
  let approximate = !queued.complete || !retrying.complete;
  let hourBuckets: CounterBucket[];
  let dayBuckets: CounterBucket[];
  if (counters) {
    [hourBuckets, dayBuckets] = await Promise.all([
      counters.read(queue, 'minute', now - HOUR_MS, now + MINUTE_MS),
      counters.read(queue, 'hour', now - 24 * HOUR_MS, now + HOUR_MS),
    ]);
  } else {
    const scans = await Promise.all((['succeeded', 'failed', 'running'] as TaskStatus[]).map((s) => scanStatus(deferred, queue, s, scanLimit)));
    const records = [...scans.flatMap((s) => s.records), ...retrying.records, ...queued.records];
    approximate ||= scans.some((s) => !s.complete);
    hourBuckets = bucketsFromRecords(records, 'minute', now - HOUR_MS - MINUTE_MS);
    dayBuckets = bucketsFromRecords(records, 'hour', now - 25 * HOUR_MS);
  }
  return {
    queue,
    source: counters ? 'counters' : 'records',
    approximate,
    hour: summarise('hour', now, hourBuckets),
    day: summarise('day', now, dayBuckets),
    ...(oldest !== undefined ? { oldestPendingAgeMs: Math.max(0, now - oldest) } : {}),
    pending: pendingRecords.length,
    durationBoundsMs: DURATION_BOUNDS_MS,
  };
}
