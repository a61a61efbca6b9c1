/**
 * deferIteration benchmark (issue 5): 100,000 items over 8 shards with a no-op callback, against a
 * plain loop over the same source (a Redis sorted set, read in the same pages) in one process; and
 * 1,000,000 items, to see that the time grows linearly.
 */
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { redisSortedSetSource, redisSources, redisStores, sortedSet } from '../adapters/redis/index.js';
import { createDeferred } from '../src/index.js';
import type { BenchResult } from './types.js';
import { median, serveDeferred } from './common.js';

const PAGE = 1000;

async function fill(client: Redis, key: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 10_000) {
    const args: Array<number | string> = [];
    for (let j = i; j < Math.min(i + 10_000, count); j += 1) args.push(j, `item-${j}`);
    await client.zadd(key, ...args);
  }
}

/** The baseline: read the whole set page by page through the same source and call a no-op. */
async function plainLoop(client: Redis, key: string): Promise<number> {
  const source = redisSortedSetSource(client);
  const noop = (_item: string) => undefined;
  const started = performance.now();
  const [range] = await source.split({ key }, 1);
  let after: string | undefined;
  let count = 0;
  for (;;) {
    const page = await source.read(range!, after, PAGE);
    for (const item of page.items) {
      noop(item.value);
      after = item.key;
      count += 1;
    }
    if (page.done) break;
  }
  void count;
  return performance.now() - started;
}

async function iterate(client: Redis, key: string, shards: number): Promise<number> {
  const prefix = `bench-it-${randomUUID().slice(0, 8)}`;
  const deferred = createDeferred({ logger: false, stores: redisStores({ client, prefix }), sources: redisSources(client) });
  const callback = deferred.task('noop', (_item: string) => undefined);
  const finalize = deferred.task('done', () => undefined);
  const app = await serveDeferred(deferred);
  const started = performance.now();
  const info = await deferred.deferIteration(sortedSet(key), callback, finalize, { shards, pageSize: PAGE });
  await info.wait({ timeoutMs: 600_000 });
  const ms = performance.now() - started;
  await app.close();
  return ms;
}

export async function benchIteration(): Promise<BenchResult[]> {
  const client = new Redis({ host: '127.0.0.1', port: 6379 });
  const small = `bench-src-${randomUUID().slice(0, 8)}`;
  const large = `bench-src-${randomUUID().slice(0, 8)}`;
  await fill(client, small, 100_000);
  const loops: number[] = [];
  const ours: number[] = [];
  for (let round = 0; round < 3; round += 1) {
    loops.push(await plainLoop(client, small));
    ours.push(await iterate(client, small, 8));
  }
  await fill(client, large, 1_000_000);
  const largeMs = await iterate(client, large, 8);
  await client.unlink(small, large);
  // Leave no bench keys behind.
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', 'bench-it-*', 'COUNT', 1000);
    if (keys.length) await client.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  await client.quit();
  const loopMs = median(loops);
  const oursMs = median(ours);
  return [
    {
      name: 'deferIteration, 100,000 items over 8 shards, no-op callback (Redis sorted set source, Redis stores, embedded emulator)',
      value: Math.round(100_000 / (oursMs / 1000)),
      unit: 'items/s',
      baseline: { name: 'plain loop over the same source in one process, same page size', value: Math.round(100_000 / (loopMs / 1000)) },
      ratio: +(loopMs / oursMs).toFixed(3),
      target: '>= 0.8',
      notes: `median of 3 rounds; ${PAGE} items per page; wall time from deferIteration() to finalize done`,
    },
    {
      name: 'deferIteration, 1,000,000 items over 8 shards',
      value: Math.round(largeMs),
      unit: 'ms',
      baseline: { name: '100,000 items over 8 shards (median above)', value: Math.round(oursMs) },
      ratio: +(largeMs / oursMs).toFixed(2),
      target: '<= 10.5 (linear growth)',
    },
  ];
}
