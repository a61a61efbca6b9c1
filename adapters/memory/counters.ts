/** TaskCounters in process memory: the embedded default's counters (one process only). */
import {
  durationBucket,
  emptyBucket,
  HOUR_RETENTION_MS,
  MINUTE_RETENTION_MS,
  resolutionMs,
  type AttemptSample,
  type CounterBucket,
  type CounterResolution,
  type TaskCounters,
} from '../../src/core/counters.js';

export class MemoryTaskCounters implements TaskCounters {
  private readonly buckets = new Map<string, CounterBucket>();
  private lastPrune = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async record(sample: AttemptSample): Promise<void> {
    for (const resolution of ['minute', 'hour'] as const) {
      const start = Math.floor(sample.at / resolutionMs(resolution)) * resolutionMs(resolution);
      const key = `${resolution}|${sample.queue}|${start}`;
      const bucket = this.buckets.get(key) ?? emptyBucket(start);
      this.buckets.set(key, bucket);
      bucket[sample.outcome] += 1;
      bucket.durations[durationBucket(sample.durationMs)]! += 1;
    }
    this.prune();
  }

  async read(queue: string, resolution: CounterResolution, from: number, to: number): Promise<CounterBucket[]> {
    const step = resolutionMs(resolution);
    const out: CounterBucket[] = [];
    for (let start = Math.ceil(from / step) * step; start < to; start += step) {
      const bucket = this.buckets.get(`${resolution}|${queue}|${start}`);
      if (bucket) out.push({ ...bucket, durations: [...bucket.durations] });
    }
    return out;
  }

  /** Drops buckets past their retention, at most once a minute. */
  private prune(): void {
    const now = this.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    for (const [key, bucket] of this.buckets) {
      const keep = key.startsWith('minute|') ? MINUTE_RETENTION_MS : HOUR_RETENTION_MS;
      if (bucket.start + keep < now) this.buckets.delete(key);
    }
  }
}

export function memoryCounters(options: { now?: () => number } = {}): MemoryTaskCounters {
  return new MemoryTaskCounters(options.now);
}
