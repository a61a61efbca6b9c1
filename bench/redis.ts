/**
 * Redis benchmarks (issue 4): end-to-end throughput (defer -> run -> recorded succeeded) of no-op
 * tasks on the embedded emulator with Redis stores, against BullMQ (Queue.add + Worker) on the
 * same Redis; and defer() with Redis state against defer() with memory state.
 */
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { Queue, Worker } from 'bullmq';
import { redisStores } from '../adapters/redis/index.js';
import { memoryStores } from '../adapters/memory/index.js';
import { createDeferred } from '../src/index.js';
import type { BenchResult } from './types.js';
import { deferRate, median, pool, serveDeferred } from './common.js';

const REDIS = { host: '127.0.0.1', port: 6379 };
const N = Number(process.env.BENCH_N ?? 10_000);
const CONCURRENCY = 64;

async function deleteKeys(client: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length) await client.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** cloud-defer end to end: all N recorded succeeded. Rate limit lifted (see notes). */
async function cloudDeferEndToEnd(heartbeatLeaseMs?: number): Promise<number> {
  const client = new Redis(REDIS);
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  const deferred = createDeferred({
    logger: false,
    stores: redisStores({ client, prefix }),
    emulator: { unlimitedRate: true },
    queues: [{ name: 'default', rateLimits: { maxConcurrentDispatches: CONCURRENCY } }],
    ...(heartbeatLeaseMs !== undefined ? { heartbeatLeaseMs } : {}),
  });
  deferred.task('noop', (_n: number) => undefined);
  const app = await serveDeferred(deferred);
  let settled = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  deferred.engine.onSettled((record) => {
    if (record.status === 'succeeded' && ++settled === N) resolveAll();
  });
  const started = performance.now();
  await pool(N, CONCURRENCY, (i) => deferred.defer('noop', [i]));
  await all;
  const rate = (N / (performance.now() - started)) * 1000;
  await app.close();
  await deleteKeys(client, `${prefix}:*`);
  await client.quit();
  return rate;
}

/** BullMQ: Queue.add of N no-op jobs and a Worker with the same concurrency, until all completed. */
async function bullmqEndToEnd(): Promise<number> {
  const name = `bench-${randomUUID().slice(0, 8)}`;
  const connection = new Redis({ ...REDIS, maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection });
  let completed = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const worker = new Worker(name, async () => undefined, { connection: new Redis({ ...REDIS, maxRetriesPerRequest: null }), concurrency: CONCURRENCY });
  worker.on('completed', () => {
    if (++completed === N) resolveAll();
  });
  await worker.waitUntilReady();
  const started = performance.now();
  await pool(N, CONCURRENCY, (i) => queue.add('noop', { i }, { removeOnComplete: true }));
  await all;
  const rate = (N / (performance.now() - started)) * 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  await connection.quit();
  return rate;
}

export async function benchEndToEndOnce(): Promise<{ ours: number; bull: number }> {
  return { bull: await bullmqEndToEnd(), ours: await cloudDeferEndToEnd() };
}

export async function benchRedis(): Promise<BenchResult[]> {
  const ours: number[] = [];
  const bull: number[] = [];
  const noHeartbeat: number[] = [];
  for (let round = 0; round < 3; round += 1) {
    bull.push(await bullmqEndToEnd());
    // Alternate which goes first: the run right after BullMQ's is slower.
    if (round % 2 === 0) {
      ours.push(await cloudDeferEndToEnd());
      noHeartbeat.push(await cloudDeferEndToEnd(0));
    } else {
      noHeartbeat.push(await cloudDeferEndToEnd(0));
      ours.push(await cloudDeferEndToEnd());
    }
  }
  const memoryRates: number[] = [];
  const redisRates: number[] = [];
  const client = new Redis(REDIS);
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  for (let round = 0; round < 3; round += 1) {
    memoryRates.push(await deferRate(memoryStores(), 4000));
    redisRates.push(await deferRate(redisStores({ client, prefix }), 4000));
  }
  await deleteKeys(client, `${prefix}:*`);
  await client.quit();
  const oursRate = median(ours);
  const bullRate = median(bull);
  const memRate = median(memoryRates);
  const redisRate = median(redisRates);
  const offRate = median(noHeartbeat);
  return [
    {
      name: `end to end, ${N} no-op tasks: defer -> emulator -> Express handler -> recorded succeeded (Redis stores)`,
      value: Math.round(oursRate),
      unit: 'tasks/s',
      baseline: { name: `BullMQ Queue.add + Worker (concurrency ${CONCURRENCY}), same Redis`, value: Math.round(bullRate) },
      ratio: +(oursRate / bullRate).toFixed(3),
      target: '>= 1.0',
      notes: `median of 3 interleaved rounds; ${CONCURRENCY} defers in flight and at most ${CONCURRENCY} concurrent dispatches; the emulator's 500/s queue rate cap lifted (unlimitedRate), as one Cloud Tasks queue caps at 500/s`,
    },
    {
      name: 'end to end with the lease heartbeat (default 30 s lease) vs without (heartbeatLeaseMs 0)',
      value: Math.round(oursRate),
      unit: 'tasks/s',
      baseline: { name: 'same, heartbeat off', value: Math.round(offRate) },
      ratio: +(oursRate / offRate).toFixed(3),
      target: '>= 0.95 (the heartbeat costs at most 5%)',
      notes: 'same rounds as the end-to-end figure, interleaved',
    },
    {
      name: 'defer() with Redis state (paused queue)',
      value: Math.round(redisRate),
      unit: 'tasks/s',
      baseline: { name: 'defer() with memory state, same emulator set-up', value: Math.round(memRate) },
      ratio: +(redisRate / memRate).toFixed(3),
      target: '>= 0.77 (Redis adds <= 30% to the time per defer)',
      notes: '4000 defers x 3 rounds, 32 in flight, median',
    },
  ];
}
