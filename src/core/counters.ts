/**
 * Per-minute counters of settled attempts, by queue and outcome, with a duration histogram: what
 * the console's totals and charts read instead of scanning every record. Optional: an engine
 * without counters still runs, and the console falls back to bounded record scans.
 */

export type CountedOutcome = 'succeeded' | 'failed' | 'retrying';

/** One settled attempt. */
export interface AttemptSample {
  queue: string;
  outcome: CountedOutcome;
  durationMs: number;
  /** When the attempt ended, epoch ms. */
  at: number;
}

/**
 * Upper bounds (ms) of the duration histogram's buckets; a last, open bucket holds the rest.
 * Fixed, so that buckets from any process add up.
 */
export const DURATION_BOUNDS_MS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 1_800_000];

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

export type CounterResolution = 'minute' | 'hour';

/** The counts of one minute (or hour) of one queue. */
export interface CounterBucket {
  /** Start of the bucket, epoch ms (a multiple of its resolution). */
  start: number;
  succeeded: number;
  failed: number;
  retrying: number;
  /** Attempts per duration bucket: `durations[i]` counts durations <= DURATION_BOUNDS_MS[i] (the last entry: longer). */
  durations: number[];
}

export interface TaskCounters {
  /** Adds one attempt to its minute and hour buckets. Atomic per bucket across processes. */
  record(sample: AttemptSample): Promise<void>;
  /**
   * The buckets of `queue` whose start lies in [from, to), oldest first; buckets with nothing
   * counted may be left out. Minute buckets are kept at least 25 hours, hour buckets 8 days.
   */
  read(queue: string, resolution: CounterResolution, from: number, to: number): Promise<CounterBucket[]>;
}

export const MINUTE_RETENTION_MS = 25 * HOUR_MS;
export const HOUR_RETENTION_MS = 8 * 24 * HOUR_MS;

export function resolutionMs(resolution: CounterResolution): number {
  return resolution === 'minute' ? MINUTE_MS : HOUR_MS;
}

/** The histogram bucket a duration falls in. */
export function durationBucket(durationMs: number): number {
  for (let i = 0; i < DURATION_BOUNDS_MS.length; i += 1) if (durationMs <= DURATION_BOUNDS_MS[i]!) return i;
  return DURATION_BOUNDS_MS.length;
}

export function emptyBucket(start: number): CounterBucket {
  return { start, succeeded: 0, failed: 0, retrying: 0, durations: new Array<number>(DURATION_BOUNDS_MS.length + 1).fill(0) };
}

/**
 * A quantile (0..1) of the durations in a histogram, as the upper bound of the bucket it falls
 * in (an upper estimate; the open last bucket answers its lower bound). Undefined when empty.
 */
export function durationQuantile(durations: readonly number[], q: number): number | undefined {
  const total = durations.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < durations.length; i += 1) {
    seen += durations[i]!;
    if (seen >= rank) return DURATION_BOUNDS_MS[Math.min(i, DURATION_BOUNDS_MS.length - 1)]!;
  }
  return DURATION_BOUNDS_MS[DURATION_BOUNDS_MS.length - 1]!;
}

/**
 * Buckets summed from stored counter rows (one per shard and bucket start): `start`, the outcome
 * counts `s`/`f`/`r` and duration counts `d0..dN`, as the Datastore and Firestore counters keep them.
 */
export function sumCounterRows(rows: Iterable<Readonly<Record<string, unknown>>>): CounterBucket[] {
  const buckets = new Map<number, CounterBucket>();
  for (const row of rows) {
    const start = Number(row.start);
    const bucket = buckets.get(start) ?? emptyBucket(start);
    buckets.set(start, bucket);
    bucket.succeeded += Number(row.s ?? 0);
    bucket.failed += Number(row.f ?? 0);
    bucket.retrying += Number(row.r ?? 0);
    for (let d = 0; d <= DURATION_BOUNDS_MS.length; d += 1) bucket.durations[d]! += Number(row[`d${d}`] ?? 0);
  }
  return [...buckets.values()].sort((a, b) => a.start - b.start);
}
