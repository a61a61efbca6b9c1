/**
 * TaskCounters on Redis: one hash per queue and minute (and per queue and hour), incremented by
 * one Lua script so the minute and hour buckets move together, expiring on their own. A queue's
 * buckets share a hash tag, so a read of a window is one pipeline on one Cluster node.
 *
 *   const deferred = createDeferred({ stores: redisStores({ client }), counters: redisCounters({ client }) });
 */
import type { Cluster, Redis } from 'ioredis';
import {
  DURATION_BOUNDS_MS,
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
import { scriptCommand } from './scripts.js';

export interface RedisCountersOptions {
  client: Redis | Cluster;
  /** Start of every key name; no "{" or "}". Default "cloud-defer" (as redisStores). */
  prefix?: string;
}

const OUTCOME_FIELD = { succeeded: 's', failed: 'f', retrying: 'r' } as const;

export class RedisTaskCounters implements TaskCounters {
  private readonly countAttempt: ReturnType<typeof scriptCommand>;

  constructor(
    private readonly client: Redis | Cluster,
    private readonly prefix: string,
  ) {
    if (/[{}]/.test(prefix)) throw new Error('cloud-defer/redis: the counters prefix may not contain "{" or "}".');
    this.countAttempt = scriptCommand(client, 'countAttempt');
  }

  private key(queue: string, resolution: CounterResolution, start: number): string {
    return `${this.prefix}:{counters:${queue}}:${resolution}:${start}`;
  }

  async record(sample: AttemptSample): Promise<void> {
    const minute = Math.floor(sample.at / resolutionMs('minute')) * resolutionMs('minute');
    const hour = Math.floor(sample.at / resolutionMs('hour')) * resolutionMs('hour');
    await this.countAttempt.call(
      this.client,
      2,
      this.key(sample.queue, 'minute', minute),
      this.key(sample.queue, 'hour', hour),
      OUTCOME_FIELD[sample.outcome],
      `d${durationBucket(sample.durationMs)}`,
      MINUTE_RETENTION_MS,
      HOUR_RETENTION_MS,
    );
  }

  async read(queue: string, resolution: CounterResolution, from: number, to: number): Promise<CounterBucket[]> {
    const step = resolutionMs(resolution);
    const starts: number[] = [];
    for (let start = Math.ceil(from / step) * step; start < to; start += step) starts.push(start);
    if (starts.length === 0) return [];
    const pipeline = this.client.pipeline();
    for (const start of starts) pipeline.hgetall(this.key(queue, resolution, start));
    const replies = (await pipeline.exec()) ?? [];
    const out: CounterBucket[] = [];
    replies.forEach(([err, value], i) => {
      if (err) throw err;
      const hash = value as Record<string, string>;
      if (Object.keys(hash).length === 0) return;
      const bucket = emptyBucket(starts[i]!);
      bucket.succeeded = Number(hash.s ?? 0);
      bucket.failed = Number(hash.f ?? 0);
      bucket.retrying = Number(hash.r ?? 0);
      for (let d = 0; d <= DURATION_BOUNDS_MS.length; d += 1) bucket.durations[d] = Number(hash[`d${d}`] ?? 0);
      out.push(bucket);
    });
    return out;
  }
}

export function redisCounters(options: RedisCountersOptions): RedisTaskCounters {
  return new RedisTaskCounters(options.client, options.prefix ?? 'cloud-defer');
}
