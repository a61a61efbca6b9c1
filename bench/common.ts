/** What the benchmarks share: a bounded-concurrency loop, the median, and an app serving a Deferred. */
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createDeferred, deferredMiddleware, type Deferred, type Stores } from '../src/index.js';
import { createEmulatorClient } from '../src/emulator/index.js';

/** Runs `op(0..count-1)` with `concurrency` calls in flight. */
export async function pool(count: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await op(next++);
    }),
  );
}

/**
 * Starts `op(0..count-1)` at `perSecond`, as a rate-limited queue hands out work (one Cloud Tasks
 * queue dispatches at most 500/s), without waiting for one call before the next; resolves when all
 * have settled.
 */
export async function paced(count: number, perSecond: number, op: (i: number) => Promise<unknown>): Promise<void> {
  const started = performance.now();
  const calls: Array<Promise<unknown>> = [];
  while (calls.length < count) {
    const due = Math.min(count, Math.floor(((performance.now() - started) * perSecond) / 1000) + 1);
    while (calls.length < due) calls.push(op(calls.length));
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(calls);
}

/** Collect garbage before a timed phase (when node runs with --expose-gc), so no phase pays for another's. */
export function settleHeap(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Operations per second of `pool(count, concurrency, op)`, from a collected heap. */
export async function timed(count: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<number> {
  settleHeap();
  const started = performance.now();
  await pool(count, concurrency, op);
  return (count / (performance.now() - started)) * 1000;
}

export const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Serves `deferred` from a real Express app on 127.0.0.1 and points its target at it. */
export async function serveDeferred(deferred: Deferred): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.use(deferredMiddleware(deferred));
  const server = http.createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  deferred.setTargetUrl(`${url}${deferred.handlerPath}`);
  await deferred.ready();
  return {
    url,
    async close() {
      await deferred.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

export const QUEUE_PARENT = 'projects/local-project/locations/us-central1/queues';

/** defer() throughput of a small task with these stores, on a paused queue of the embedded emulator. */
export async function deferRate(stores: Stores, count: number, concurrency = 32): Promise<number> {
  const deferred = createDeferred({ logger: false, stores, queues: [{ name: 'bench-state' }] });
  deferred.task('noop', (_n: number) => undefined);
  deferred.setTargetUrl('http://127.0.0.1:9/_ah/queue/deferred');
  await deferred.ready();
  const client = createEmulatorClient(deferred.emulator!);
  await client.pauseQueue({ name: `${QUEUE_PARENT}/bench-state` });
  await pool(300, concurrency, (i) => deferred.defer('noop', [i], { queue: 'bench-state' }));
  const rate = await timed(count, concurrency, (i) => deferred.defer('noop', [i], { queue: 'bench-state' }));
  await client.close();
  await deferred.close();
  return rate;
}
