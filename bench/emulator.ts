/**
 * Benchmarks of the Cloud Tasks emulator, each with a baseline measured in the same run:
 * - dispatch throughput of 20,000 due tasks to a no-op HTTP target (rate limit lifted), against a
 *   plain keep-alive HTTP client sending as many requests at the same concurrency;
 * - lateness of scheduled tasks (actual minus scheduled arrival) at 1,000 tasks/s, against plain
 *   setTimeout timers at the same rate;
 * - memory held per scheduled task with 100,000 tasks due far in the future, against a minimal
 *   in-memory record of the same task;
 * - CreateTask latency through the official client, against GetQueue (a trivial RPC) on the same channel;
 * - CreateTask latency over REST on the same port (a keep-alive JSON POST, as firebase-admin sends),
 *   against the same call over gRPC; and the official client's `fallback: 'rest'` mode against the
 *   same client answered by a fixed-reply HTTP server (the client's own floor).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { createEmulatorClient, startEmulator, type EmulatorHandle } from '../src/emulator/index.js';
import type { BenchResult } from './types.js';

process.env.METADATA_SERVER_DETECTION ??= 'none';

const PARENT = 'projects/bench/locations/us-central1';
type Client = ReturnType<typeof createEmulatorClient>;

interface NoopTarget {
  url: string;
  received: number;
  /** Per request: arrival (ms, fractional) minus the X-CloudTasks-TaskETA it carried. */
  lateness: number[];
  close(): Promise<void>;
}

async function startNoopTarget(): Promise<NoopTarget> {
  const target: NoopTarget = { url: '', received: 0, lateness: [], close: async () => {} };
  const server = http.createServer((req, res) => {
    const arrived = performance.timeOrigin + performance.now();
    target.received++;
    const eta = req.headers['x-cloudtasks-tasketa'];
    if (typeof eta === 'string') target.lateness.push(arrived - Number(eta) * 1000);
    req.resume();
    req.on('end', () => res.end());
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  target.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/noop`;
  target.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return target;
}

/** Runs `count` calls of `call`, at most `concurrency` at a time. */
async function runConcurrently(count: number, concurrency: number, call: (index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await call(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

async function until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

async function createQueue(client: Client, id: string, paused: boolean): Promise<string> {
  const name = `${PARENT}/queues/${id}`;
  await client.createQueue({ parent: PARENT, queue: { name, rateLimits: { maxConcurrentDispatches: 1000 } } });
  if (paused) await client.pauseQueue({ name });
  return name;
}

/** Sends `count` POSTs to `url` from a plain keep-alive client, `concurrency` at a time; returns requests/s. */
async function plainClientRate(url: string, count: number, concurrency: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true });
  const started = performance.now();
  await runConcurrently(
    count,
    concurrency,
    () =>
      new Promise<void>((resolve, reject) => {
        const request = http.request(url, { method: 'POST', agent }, (response) => {
          response.resume();
          response.on('end', resolve);
        });
        request.on('error', reject);
        request.end();
      }),
  );
  const rate = (count / (performance.now() - started)) * 1000;
  agent.destroy();
  return rate;
}

async function benchThroughput(emulator: EmulatorHandle, client: Client): Promise<BenchResult> {
  const COUNT = 20_000;
  const CONCURRENCY = 1000;
  // Baseline first, on a target of its own, so neither run inherits the other's connections.
  const baselineTarget = await startNoopTarget();
  const baselineRate = await plainClientRate(baselineTarget.url, COUNT, CONCURRENCY).finally(() => baselineTarget.close());

  const target = await startNoopTarget();
  try {
    const queue = await createQueue(client, 'throughput', true);
    await runConcurrently(COUNT, 64, () => client.createTask({ parent: queue, task: { httpRequest: { url: target.url } } }));
    const started = performance.now();
    await client.resumeQueue({ name: queue });
    await until(() => target.received >= COUNT, 'all dispatches');
    await emulator.idle();
    const emulatorRate = (COUNT / (performance.now() - started)) * 1000;
    return {
      name: 'emulator dispatch throughput (20,000 due tasks, no-op target)',
      value: Math.round(emulatorRate),
      unit: 'tasks/s',
      baseline: { name: 'plain keep-alive HTTP client, same concurrency, same process', value: Math.round(baselineRate) },
      ratio: round(emulatorRate / baselineRate),
      notes:
        `rate limit lifted (unlimitedRate, test-only), max_concurrent_dispatches ${CONCURRENCY}; ` +
        'tasks created on a paused queue, timed from ResumeQueue until every attempt settled',
    };
  } finally {
    await target.close();
  }
}

async function benchLateness(client: Client): Promise<BenchResult[]> {
  const RATE_PER_MS = 1; // 1,000 tasks/s
  const COUNT = 3000;
  const target = await startNoopTarget();
  try {
    const queue = await createQueue(client, 'lateness', false);
    const firstDue = Date.now() + 5000;
    await runConcurrently(COUNT, 64, (i) => {
      const due = firstDue + i / RATE_PER_MS;
      return client.createTask({
        parent: queue,
        task: {
          httpRequest: { url: target.url },
          scheduleTime: { seconds: Math.floor(due / 1000), nanos: (due % 1000) * 1e6 },
        },
      });
    });
    if (Date.now() > firstDue) throw new Error('creating the scheduled tasks took longer than the lead time');
    await until(() => target.received >= COUNT, 'the scheduled tasks', 30_000);
    const lateness = target.lateness;

    // Baseline: plain setTimeout timers due at the same instants, arrival measured the same way.
    const timerLateness: number[] = [];
    const baseDue = Date.now() + 500;
    await new Promise<void>((resolve) => {
      let fired = 0;
      for (let i = 0; i < COUNT; i++) {
        const due = baseDue + i / RATE_PER_MS;
        setTimeout(() => {
          timerLateness.push(performance.timeOrigin + performance.now() - due);
          if (++fired === COUNT) resolve();
        }, due - Date.now());
      }
    });
    const p50 = percentile(lateness, 50);
    const p99 = percentile(lateness, 99);
    const notes = `${COUNT} tasks due at 1,000/s, arrival at the target minus X-CloudTasks-TaskETA`;
    return [
      {
        name: 'emulator lateness p50 (1,000 scheduled tasks/s)',
        value: round(p50),
        unit: 'ms',
        baseline: { name: 'setTimeout lateness p50, same schedule', value: round(percentile(timerLateness, 50)) },
        ratio: round(p50 / Math.max(percentile(timerLateness, 50), 0.01)),
        notes,
      },
      {
        name: 'emulator lateness p99 (1,000 scheduled tasks/s)',
        value: round(p99),
        unit: 'ms',
        baseline: { name: 'setTimeout lateness p99, same schedule', value: round(percentile(timerLateness, 99)) },
        ratio: round(p99 / Math.max(percentile(timerLateness, 99), 0.01)),
        target: '<= 50 ms',
        notes,
      },
    ];
  } finally {
    await target.close();
  }
}

function collectGarbage(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

function memoryInUse(gc: () => void): number {
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

async function benchMemory(client: Client): Promise<BenchResult> {
  const COUNT = 100_000;
  const BODY_BYTES = 64;
  const gc = collectGarbage();
  const queue = await createQueue(client, 'memory', false);
  const farAhead = Math.floor(Date.now() / 1000) + 10 * 24 * 3600;
  const body = Buffer.alloc(BODY_BYTES, 120);
  const url = 'http://127.0.0.1:9/never-called';
  await client.getQueue({ name: queue }); // warm the channel before measuring
  const before = memoryInUse(gc);
  await runConcurrently(COUNT, 128, (i) =>
    client.createTask({
      parent: queue,
      task: { httpRequest: { url, body }, scheduleTime: { seconds: farAhead + (i % 3600), nanos: 0 } },
    }),
  );
  const perTask = (memoryInUse(gc) - before) / COUNT - BODY_BYTES;
  await client.purgeQueue({ name: queue });

  // Baseline: the least a program could keep per task (name, URL, body, times) in a Map.
  const baselineBefore = memoryInUse(gc);
  const minimal = new Map<string, { url: string; body: Buffer; scheduleTime: number; createTime: number }>();
  for (let i = 0; i < COUNT; i++) {
    const id = String(1_000_000_000_000_000_000n + BigInt(i));
    minimal.set(`${queue}/tasks/${id}`, { url: `${url}`.slice(0), body: Buffer.from(body), scheduleTime: farAhead + i, createTime: Date.now() });
  }
  const baselinePerTask = (memoryInUse(gc) - baselineBefore) / COUNT - BODY_BYTES;
  minimal.clear();
  return {
    name: 'emulator memory per scheduled task (100,000 tasks, beyond the body)',
    value: Math.round(perTask),
    unit: 'bytes/task',
    baseline: { name: 'minimal record per task in a Map (name, URL, body, times)', value: Math.round(baselinePerTask) },
    ratio: round(perTask / baselinePerTask),
    target: '<= 2048 bytes',
    notes: `heapUsed + arrayBuffers after gc, minus the ${BODY_BYTES}-byte body; tasks due 10 days ahead`,
  };
}

async function benchCreateLatency(client: Client): Promise<BenchResult[]> {
  const COUNT = 2000;
  const queue = await createQueue(client, 'latency', true);
  const timed = async (call: () => Promise<unknown>): Promise<number[]> => {
    const samples: number[] = [];
    for (let i = 0; i < 200; i++) await call(); // warm-up
    for (let i = 0; i < COUNT; i++) {
      const start = performance.now();
      await call();
      samples.push(performance.now() - start);
    }
    return samples;
  };
  const body = Buffer.from(JSON.stringify({ task: 'send-email', args: ['user@example.com'] }));
  const create = await timed(() => client.createTask({ parent: queue, task: { httpRequest: { url: 'http://127.0.0.1:9/x', body } } }));
  const get = await timed(() => client.getQueue({ name: queue }));
  const notes = `${COUNT} sequential calls through the official CloudTasksClient over plaintext gRPC (paused queue)`;
  return [50, 99].map((p) => ({
    name: `createTask latency p${p}`,
    value: round(percentile(create, p), 3),
    unit: 'ms',
    baseline: { name: `GetQueue latency p${p}, same client`, value: round(percentile(get, p), 3) },
    ratio: round(percentile(create, p) / percentile(get, p)),
    notes,
  }));
}

async function sequentialLatencies(call: () => Promise<unknown>, count: number): Promise<number[]> {
  for (let i = 0; i < 200; i++) await call(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await call();
    samples.push(performance.now() - start);
  }
  return samples;
}

/** An HTTP server answering every request with one fixed task: the REST client's own floor. */
async function startCannedTaskServer(): Promise<{ address: string; close(): Promise<void> }> {
  const reply = JSON.stringify({
    name: 'projects/bench/locations/us-central1/queues/rest-latency/tasks/1',
    httpRequest: { url: 'http://127.0.0.1:9/x', httpMethod: 1, headers: { 'User-Agent': 'Google-Cloud-Tasks' } },
    scheduleTime: '2026-12-01T00:00:00Z',
    createTime: '2026-12-01T00:00:00Z',
    dispatchDeadline: '600s',
    view: 1,
  });
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(reply));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function benchRestLatency(emulator: EmulatorHandle, grpcClient: Client): Promise<BenchResult[]> {
  const COUNT = 2000;
  const ROUNDS = 4;
  const canned = await startCannedTaskServer();
  const restClient = createEmulatorClient(emulator, { fallback: 'rest' });
  const cannedClient = createEmulatorClient(canned.address, { fallback: 'rest' });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const queue = await createQueue(grpcClient, 'rest-latency', true);
    const body = Buffer.from(JSON.stringify({ task: 'send-email', args: ['user@example.com'] }));
    const task = { httpRequest: { url: 'http://127.0.0.1:9/x', body } };
    // What firebase-admin and other REST callers send: one JSON POST on a keep-alive connection.
    const json = JSON.stringify({ task: { httpRequest: { url: task.httpRequest.url, body: body.toString('base64') } } });
    const rawRest = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const request = http.request(
          `${emulator.restUrl}/v2/${queue}/tasks`,
          { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (response) => {
            response.resume();
            response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${response.statusCode}`))));
          },
        );
        request.on('error', reject);
        request.end(json);
      });
    const samples = { raw: [] as number[], grpc: [] as number[], client: [] as number[], floor: [] as number[] };
    // Alternate rounds so every variant sees the same machine load.
    for (let round = 0; round < ROUNDS; round++) {
      samples.raw.push(...(await sequentialLatencies(rawRest, COUNT / ROUNDS)));
      samples.grpc.push(...(await sequentialLatencies(() => grpcClient.createTask({ parent: queue, task }), COUNT / ROUNDS)));
      samples.client.push(...(await sequentialLatencies(() => restClient.createTask({ parent: queue, task }), COUNT / ROUNDS)));
      samples.floor.push(...(await sequentialLatencies(() => cannedClient.createTask({ parent: queue, task }), COUNT / ROUNDS)));
    }
    const p50 = (values: number[]): number => percentile(values, 50);
    return [
      {
        name: 'createTask latency p50 over REST (keep-alive JSON POST, as firebase-admin sends)',
        value: round(p50(samples.raw), 3),
        unit: 'ms',
        baseline: { name: 'createTask latency p50 over gRPC (official client), same port', value: round(p50(samples.grpc), 3) },
        ratio: round(p50(samples.raw) / p50(samples.grpc)),
        target: 'ratio <= 1.5',
        notes: `${COUNT} sequential calls each (paused queue)`,
      },
      {
        name: "createTask latency p50, official client with fallback: 'rest'",
        value: round(p50(samples.client), 3),
        unit: 'ms',
        baseline: { name: 'the same client against an HTTP server answering a fixed task (its own floor)', value: round(p50(samples.floor), 3) },
        ratio: round(p50(samples.client) / p50(samples.floor)),
        notes: `against gRPC's ${round(p50(samples.grpc), 3)} ms: the REST client's own JSON and fetch stack costs more than the emulator's REST surface`,
      },
    ];
  } finally {
    agent.destroy();
    await restClient.close();
    await cannedClient.close();
    await canned.close();
  }
}

/** Every emulator benchmark; about a minute on a 2-core machine. */
export async function benchEmulator(): Promise<BenchResult[]> {
  const emulator = await startEmulator({ unlimitedRate: true });
  const client = createEmulatorClient(emulator);
  try {
    await client.createQueue({ parent: PARENT, queue: { name: `${PARENT}/queues/warm-up` } });
    const results: BenchResult[] = [];
    results.push(await benchThroughput(emulator, client));
    results.push(...(await benchLateness(client)));
    results.push(...(await benchCreateLatency(client)));
    results.push(...(await benchRestLatency(emulator, client)));
    results.push(await benchMemory(client));
    return results;
  } finally {
    await client.close();
    await emulator.stop();
  }
}
