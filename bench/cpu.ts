/**
 * What the app pays per task (issue 18): CPU of the app process and of Redis per task, cloud-defer
 * against BullMQ on the same Redis, with the Cloud Tasks emulator in a child process (so its CPU,
 * Google's in production, is not counted as the app's). Also the floor of the design, measured in the
 * same run: a bare createTask call with the official client, a bare HTTP request to a Node server, and
 * the store round trips a task makes; and the split of the app's CPU by stage (defer; delivery and
 * settle) and, from a CPU profile of the delivery phase, by the code that spent it.
 *
 * Redis here is a private `redis-server` on a free port, so that nothing else on the machine shows up
 * in its `INFO cpu` deltas.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as inspector from 'node:inspector';
import { createServer, type AddressInfo } from 'node:net';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { Queue, Worker } from 'bullmq';
import { redisStores } from '../adapters/redis/index.js';
import { createDeferred } from '../src/index.js';
import { createEmulatorClient } from '../src/emulator/index.js';
import type { BenchResult } from './types.js';
import { median, paced, pool, serveDeferred, settleHeap } from './common.js';

const N = Number(process.env.BENCH_CPU_N ?? 3_000);
const CONCURRENCY = 64;
const ROUNDS = Number(process.env.BENCH_CPU_ROUNDS ?? 3);
/** Dispatches per second of one queue (Cloud Tasks' cap, and the bench queues' setting). */
const QUEUE_RATE = 500;
const PROJECT = 'local-project';
const LOCATION = 'us-central1';
const ROOT = path.resolve(__dirname, '..', '..');

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** A child process until it prints the lines `wanted` names; resolves with their values. */
async function startChild(command: string, args: string[], wanted: string[]): Promise<{ child: ChildProcess; values: Record<string, string> }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
  const values: Record<string, string> = {};
  let buffer = '';
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${command} exited with ${code} before it was ready`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (const line of buffer.split('\n')) {
        const [key, ...rest] = line.split('=');
        if (key && wanted.includes(key) && rest.length) values[key] = rest.join('=').trim();
      }
      if (wanted.every((k) => values[k])) resolve();
    });
  });
  child.removeAllListeners('exit');
  return { child, values };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

interface RedisServer {
  port: number;
  stop(): Promise<void>;
}

async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  probe.on('error', () => undefined);
  for (let i = 0; i < 100; i += 1) {
    try {
      await probe.connect();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await probe.ping();
  probe.disconnect();
  return {
    port,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** Redis's own CPU seconds so far (user + sys), and its command count. */
async function redisCounters(client: Redis): Promise<{ cpuMs: number; calls: number }> {
  const cpu = await client.info('cpu');
  const stats = await client.info('stats');
  const read = (text: string, key: string): number => Number(new RegExp(`^${key}:([0-9.]+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    cpuMs: (read(cpu, 'used_cpu_user') + read(cpu, 'used_cpu_sys')) * 1000,
    calls: read(stats, 'total_commands_processed'),
  };
}

const cpuMs = (usage: NodeJS.CpuUsage): number => (usage.user + usage.system) / 1000;

interface CpuFigure {
  appMsPerTask: number;
  redisMsPerTask: number;
  redisCommandsPerTask: number;
}

/**
 * Round trips to Redis while `work` runs: commands sent by clients, counted with MONITOR (which
 * names commands a Lua script issued as coming from "lua", so those are left out). MONITOR slows
 * Redis, so this runs in a phase of its own, never in a measured one.
 */
async function roundTrips(redisPort: number, work: () => Promise<void>): Promise<number> {
  const watcher = new Redis({ port: redisPort, host: '127.0.0.1' });
  const monitor = await watcher.monitor();
  let count = 0;
  monitor.on('monitor', (_time: string, _args: string[], source: string) => {
    if (source !== 'lua') count += 1;
  });
  await work();
  await new Promise((r) => setTimeout(r, 100));
  monitor.disconnect();
  watcher.disconnect();
  return count;
}

/** Measures `work` (which processes `count` tasks) in this process and in Redis. */
async function measure(redis: Redis, count: number, work: () => Promise<void>): Promise<CpuFigure> {
  settleHeap();
  const before = await redisCounters(redis);
  const start = process.cpuUsage();
  await work();
  const app = cpuMs(process.cpuUsage(start));
  const after = await redisCounters(redis);
  // The two INFO calls of `after` are themselves commands: leave them out.
  return {
    appMsPerTask: app / count,
    redisMsPerTask: (after.cpuMs - before.cpuMs) / count,
    redisCommandsPerTask: (after.calls - before.calls - 2) / count,
  };
}

interface Emulator {
  host: string;
  jwksUri: string;
  stop(): Promise<void>;
}

async function startEmulatorProcess(): Promise<Emulator> {
  const port = await freePort();
  const { child, values } = await startChild(
    process.execPath,
    [path.join(ROOT, 'bin', 'cloud-defer.cjs'), 'emulator', '--port', String(port), '--project', PROJECT, '--location', LOCATION],
    ['CLOUD_TASKS_EMULATOR_HOST', 'CLOUD_TASKS_EMULATOR_JWKS_URI'],
  );
  return { host: values.CLOUD_TASKS_EMULATOR_HOST!, jwksUri: values.CLOUD_TASKS_EMULATOR_JWKS_URI!, stop: () => stopChild(child) };
}

interface StageFigures {
  total: CpuFigure;
  defer: CpuFigure;
  deliverAndSettle: CpuFigure;
  profile: { shares: Record<string, number>; top: string[] };
  roundTripsPerTask: number;
}

/** cloud-defer, Redis stores, the emulator in its own process: N no-op tasks, 64 in flight. */
/**
 * One queue dispatches at most 500 tasks/s (Cloud Tasks' cap, kept by the emulator), so with
 * `queueCount` 1 the deliveries trickle in and each pays its own wake-up; BullMQ's worker runs
 * unthrottled. `queueCount` 6 spreads the tasks over six queues (up to 3,000/s) for a figure
 * under the same saturation as BullMQ's.
 */
async function cloudDefer(redisPort: number, emulator: Emulator, profile: boolean, queueCount = 1, autoPipelining = false): Promise<StageFigures> {
  process.env.CLOUD_TASKS_EMULATOR_HOST = emulator.host;
  process.env.CLOUD_TASKS_EMULATOR_JWKS_URI = emulator.jwksUri;
  const client = new Redis({ port: redisPort, host: '127.0.0.1', enableAutoPipelining: autoPipelining });
  const probe = new Redis({ port: redisPort, host: '127.0.0.1' });
  const prefix = `cpu-${randomUUID().slice(0, 8)}`;
  const queue = `cpu-${randomUUID().slice(0, 8)}`;
  const deferred = createDeferred({
    logger: false,
    mode: 'emulator',
    projectId: PROJECT,
    location: LOCATION,
    stores: redisStores({ client, prefix }),
    defaultQueue: queue,
    queues: Array.from({ length: queueCount }, (_, k) => ({
      name: k === 0 ? queue : `${queue}-${k}`,
      rateLimits: { maxConcurrentDispatches: CONCURRENCY, maxDispatchesPerSecond: QUEUE_RATE },
    })),
  });
  const queueNames = Array.from({ length: queueCount }, (_, k) => (k === 0 ? queue : `${queue}-${k}`));
  const deferOne = (i: number) => deferred.defer('noop', [i], { queue: queueNames[i % queueCount]! });
  deferred.task('noop', (_n: number) => undefined);
  const app = await serveDeferred(deferred);
  let settled = 0;
  let target = 0;
  let wake: () => void = () => undefined;
  deferred.engine.onSettled((record) => {
    if (record.status === 'succeeded' && ++settled === target) wake();
  });
  const until = (count: number): Promise<void> => {
    target = count;
    return settled >= count ? Promise.resolve() : new Promise<void>((r) => (wake = r));
  };
  // Warm the paths (client, JIT, token cache) before measuring.
  await pool(200, CONCURRENCY, deferOne);
  await until(200);

  const total = await measure(probe, N, async () => {
    await pool(N, CONCURRENCY, deferOne);
    await until(200 + N);
  });

  // Stages: defer on a paused queue, then resume and let every task be delivered and settled.
  for (const name of queueNames) await deferred.pauseQueue(name);
  const defer = await measure(probe, N, () => pool(N, CONCURRENCY, deferOne));
  const session = profile ? new inspector.Session() : undefined;
  if (session) {
    session.connect();
    await post(session, 'Profiler.enable');
    await post(session, 'Profiler.setSamplingInterval', { interval: 200 });
    await post(session, 'Profiler.start');
  }
  const deliverAndSettle = await measure(probe, N, async () => {
    for (const name of queueNames) await deferred.resumeQueue(name);
    await until(200 + 2 * N);
  });
  const recorded = session ? ((await post(session, 'Profiler.stop')).profile as CpuProfile) : undefined;
  // BENCH_CPU_PROFILE=<file> keeps the delivery phase's profile (open it in Chrome DevTools' Performance tab).
  if (recorded && process.env.BENCH_CPU_PROFILE) writeFileSync(process.env.BENCH_CPU_PROFILE, JSON.stringify(recorded));
  const shares = recorded ? categorise(recorded) : { shares: {}, top: [] };
  session?.disconnect();
  const sample = 200;
  const trips = await roundTrips(redisPort, async () => {
    await pool(sample, CONCURRENCY, deferOne);
    await until(200 + 2 * N + sample);
  });

  await app.close();
  await deleteKeys(client, `${prefix}:*`);
  await client.quit();
  await probe.quit();
  return { total, defer, deliverAndSettle, profile: shares, roundTripsPerTask: trips / sample };
}

function post(session: inspector.Session, method: string, params?: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve((result ?? {}) as Record<string, unknown>))),
  );
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string }; children?: number[] }>;
  samples: number[];
}

/** The functions with the most self time, as "name (file) share". */
function topFrames(profile: CpuProfile, byId: Map<number, CpuProfile['nodes'][number]>, busy: number): string[] {
  const self = new Map<string, number>();
  for (const id of profile.samples) {
    const { functionName, url } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    const key = `${functionName || '(anonymous)'} (${
      url
        .split(/[\\/]node_modules[\\/]/)
        .pop()!
        .split('/')
        .slice(-2)
        .join('/') || 'native'
    })`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([k, v]) => `${k} ${((v / busy) * 100).toFixed(1)}%`);
}

/** Share of the samples by where the sampled (innermost) frame's code lives, and the top functions. */
function categorise(profile: CpuProfile): { shares: Record<string, number>; top: string[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts: Record<string, number> = {};
  for (const id of profile.samples) {
    const frame = byId.get(id)!.callFrame;
    const url = frame.url;
    const name = frame.functionName;
    let category: string;
    if (name === '(garbage collector)') category = 'garbage collection';
    else if (name === '(idle)' || name === '(program)') category = name === '(idle)' ? 'idle' : 'V8 / native';
    else if (/node_modules[\\/](@grpc|protobufjs|@protobufjs|google-gax|@google-cloud)/.test(url)) category = 'gRPC client (grpc-js, protobufjs, gax)';
    else if (/node_modules[\\/](ioredis|@ioredis|redis-parser|denque|cluster-key-slot)/.test(url)) category = 'ioredis';
    else if (/node_modules[\\/](express|router|body-parser|raw-body|finalhandler|send|qs|on-finished|type-is|mime)/.test(url)) category = 'Express';
    else if (/node_modules[\\/](google-auth-library|jws|jwa|gtoken|gaxios)/.test(url)) category = 'token check (google-auth-library)';
    else if (/[\\/](src|adapters)[\\/]/.test(url) && !/node_modules/.test(url)) category = 'cloud-defer';
    else if (url.startsWith('node:') || url === '' || !url.includes('/')) category = 'Node core (http, net, streams)';
    else category = 'other packages';
    counts[category] = (counts[category] ?? 0) + 1;
  }
  const busy = profile.samples.length - (counts.idle ?? 0);
  const shares: Record<string, number> = {};
  for (const [k, v] of Object.entries(counts)) if (k !== 'idle') shares[k] = +(v / busy).toFixed(3);
  return { shares, top: topFrames(profile, byId, busy) };
}

async function deleteKeys(client: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length) await client.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/**
 * BullMQ on the same Redis: Queue.add + Worker, N no-op jobs, 64 in flight; with `perSecond`, the
 * jobs are added at that rate instead (the arrival rate of one Cloud Tasks queue), so both sides
 * wake up per job the same way.
 */
async function bullmq(redisPort: number, perSecond?: number): Promise<CpuFigure & { roundTripsPerTask: number }> {
  const name = `cpu-${randomUUID().slice(0, 8)}`;
  const options = { port: redisPort, host: '127.0.0.1', maxRetriesPerRequest: null };
  const connection = new Redis(options);
  const probe = new Redis(options);
  const queue = new Queue(name, { connection });
  let completed = 0;
  let target = 0;
  let wake: () => void = () => undefined;
  const worker = new Worker(name, async () => undefined, { connection: new Redis(options), concurrency: CONCURRENCY });
  worker.on('completed', () => {
    if (++completed === target) wake();
  });
  await worker.waitUntilReady();
  const until = (count: number): Promise<void> => {
    target = count;
    return completed >= count ? Promise.resolve() : new Promise<void>((r) => (wake = r));
  };
  await pool(200, CONCURRENCY, (i) => queue.add('noop', { i }, { removeOnComplete: true }));
  await until(200);
  const add = (i: number): Promise<unknown> => queue.add('noop', { i }, { removeOnComplete: true });
  const figure = await measure(probe, N, async () => {
    await (perSecond === undefined ? pool(N, CONCURRENCY, add) : paced(N, perSecond, add));
    await until(200 + N);
  });
  const sample = 200;
  const trips = await roundTrips(redisPort, async () => {
    await pool(sample, CONCURRENCY, (i) => queue.add('noop', { i }, { removeOnComplete: true }));
    await until(200 + N + sample);
  });
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  await connection.quit();
  await probe.quit();
  return { ...figure, roundTripsPerTask: trips / sample };
}

/** Floor 1: the official client's createTask of a same-sized body on a paused queue, nothing else. */
async function bareCreateTask(emulator: Emulator): Promise<number> {
  const client = createEmulatorClient(emulator.host);
  const parent = `projects/${PROJECT}/locations/${LOCATION}`;
  const queue = `${parent}/queues/bare-${randomUUID().slice(0, 8)}`;
  await client.createQueue({ parent, queue: { name: queue } });
  await client.pauseQueue({ name: queue });
  const body = Buffer.from(JSON.stringify({ v: 1, task: 'noop', id: randomUUID(), args: [1] }));
  const create = (): Promise<unknown> =>
    client.createTask({ parent: queue, task: { httpRequest: { url: 'http://127.0.0.1:9/_ah/queue/deferred', httpMethod: 'POST', body } } });
  await pool(200, CONCURRENCY, create);
  settleHeap();
  const start = process.cpuUsage();
  await pool(N, CONCURRENCY, create);
  const perTask = cpuMs(process.cpuUsage(start)) / N;
  await client.deleteQueue({ name: queue });
  await client.close();
  return perTask;
}

/**
 * Floor 2: a bare node:http server answering N POSTs of an envelope-sized body, the client in a
 * child: 64 in flight, or with `perSecond` sent at that rate (as one Cloud Tasks queue dispatches).
 */
async function bareHttpRequest(perSecond?: number): Promise<number> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.statusCode = 200;
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const paced = perSecond !== undefined;
  const client = (count: number): string => `
    const http = require('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: ${CONCURRENCY} });
    const body = Buffer.alloc(120, 'x');
    let next = 0, done = 0;
    const one = () => { if (next >= ${count}) return; next++;
      const req = http.request({ host: '127.0.0.1', port: ${port}, method: 'POST', path: '/_ah/queue/deferred', agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length, 'x-cloudtasks-taskname': 't', 'x-cloudtasks-queuename': 'q', authorization: 'Bearer ' + 'x'.repeat(800) } },
        (res) => { res.resume(); res.on('end', () => { if (++done === ${count}) { agent.destroy(); process.exit(0); } if (!${paced}) one(); }); });
      req.end(body); };
    if (${paced}) {
      const started = performance.now();
      const tick = () => { const due = Math.min(${count}, Math.floor((performance.now() - started) * ${perSecond ?? 0} / 1000) + 1);
        while (next < due) one();
        if (next < ${count}) setTimeout(tick, 1); };
      tick();
    } else for (let i = 0; i < ${CONCURRENCY}; i++) one();`;
  const run = async (count: number): Promise<void> => {
    const child = spawn(process.execPath, ['-e', client(count)], { stdio: 'inherit' });
    await once(child, 'exit');
  };
  await run(200);
  settleHeap();
  const start = process.cpuUsage();
  await run(N);
  const perRequest = cpuMs(process.cpuUsage(start)) / N;
  server.closeAllConnections();
  server.close();
  return perRequest;
}

/**
 * Floor 3: app-side CPU of one ioredis round trip (an EVALSHA of a small script on one key), 64 in
 * flight or, with `perSecond`, sent at that rate.
 */
async function bareRedisRoundTrip(redisPort: number, perSecond?: number): Promise<number> {
  const client = new Redis({ port: redisPort, host: '127.0.0.1' });
  const script = "return redis.call('SET', KEYS[1], ARGV[1])";
  const sha = (await client.script('LOAD', script)) as string;
  const payload = 'x'.repeat(400);
  const op = (i: number): Promise<unknown> => client.evalsha(sha, 1, `cpu-floor:${i % 1000}`, payload);
  await pool(1000, CONCURRENCY, op);
  settleHeap();
  const start = process.cpuUsage();
  await (perSecond === undefined ? pool(N * 3, CONCURRENCY, op) : paced(N * 3, perSecond, op));
  const perCall = cpuMs(process.cpuUsage(start)) / (N * 3);
  await deleteKeys(client, 'cpu-floor:*');
  await client.quit();
  return perCall;
}

const round3 = (n: number): number => +n.toFixed(3);

/** Queues the saturated variant spreads its tasks over. */
const SATURATING_QUEUES = 6;

export async function benchCpu(): Promise<BenchResult[]> {
  const redisServer = await startRedis();
  // A failed emulator start must not leave the private redis-server running.
  const emulator = await startEmulatorProcess().catch(async (error: unknown) => {
    await redisServer.stop();
    throw error;
  });
  const ours: StageFigures[] = [];
  const saturated: StageFigures[] = [];
  const pipelined: StageFigures[] = [];
  const bull: Array<CpuFigure & { roundTripsPerTask: number }> = [];
  const bullAtQueueRate: CpuFigure[] = [];
  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      bull.push(await bullmq(redisServer.port));
      bullAtQueueRate.push(await bullmq(redisServer.port, QUEUE_RATE));
      ours.push(await cloudDefer(redisServer.port, emulator, round === ROUNDS - 1));
      saturated.push(await cloudDefer(redisServer.port, emulator, false, SATURATING_QUEUES));
      pipelined.push(await cloudDefer(redisServer.port, emulator, false, SATURATING_QUEUES, true));
    }
    const floorCreate = await bareCreateTask(emulator);
    const floorHttp = await bareHttpRequest();
    const floorRedis = await bareRedisRoundTrip(redisServer.port);
    const floorHttpAtQueueRate = await bareHttpRequest(QUEUE_RATE);

    const m = (pick: (f: StageFigures) => number): number => median(ours.map(pick));
    const mb = (pick: (f: CpuFigure) => number): number => median(bull.map(pick));
    const appOurs = m((f) => f.total.appMsPerTask);
    const appBull = mb((f) => f.appMsPerTask);
    const redisOurs = m((f) => f.total.redisMsPerTask);
    const redisBull = mb((f) => f.redisMsPerTask);
    const commands = m((f) => f.total.redisCommandsPerTask);
    const trips = m((f) => f.roundTripsPerTask);
    const bullTrips = median(bull.map((f) => f.roundTripsPerTask));
    const deferStage = m((f) => f.defer.appMsPerTask);
    const deliveryStage = m((f) => f.deliverAndSettle.appMsPerTask);
    const storeFloor = floorRedis * trips;
    // The store's round trips at the rate one queue's deliveries cause them (trips per task x 500/s).
    const redisRateAtQueueRate = QUEUE_RATE * Math.max(1, Math.round(trips));
    const floorRedisAtQueueRate = await bareRedisRoundTrip(redisServer.port, redisRateAtQueueRate);
    const floorAtQueueRate = floorHttpAtQueueRate + floorRedisAtQueueRate * trips;
    const mq = (pick: (f: CpuFigure) => number): number => median(bullAtQueueRate.map(pick));
    const appBullAtQueueRate = mq((f) => f.appMsPerTask);
    const redisBullAtQueueRate = mq((f) => f.redisMsPerTask);
    const floor = floorCreate + floorHttp + storeFloor;
    const profile = ours[ours.length - 1]!.profile;
    const ms = (pick: (f: StageFigures) => number): number => median(saturated.map(pick));
    const appSaturated = ms((f) => f.total.appMsPerTask);
    const redisSaturated = ms((f) => f.total.redisMsPerTask);
    const deliverySaturated = ms((f) => f.deliverAndSettle.appMsPerTask);
    const mp = (pick: (f: StageFigures) => number): number => median(pipelined.map(pick));
    const saturatedName = `${SATURATING_QUEUES} queues (up to ${SATURATING_QUEUES * 500} dispatches/s, saturated like BullMQ's worker)`;
    return [
      {
        name: `app-process CPU per task, ${N} no-op tasks at ${CONCURRENCY} in flight, Redis stores, emulator in its own process`,
        value: round3(appOurs),
        unit: 'ms',
        baseline: { name: 'BullMQ Queue.add + Worker, same Redis, same concurrency', value: round3(appBull) },
        ratio: round3(appOurs / appBull),
        target: '<= 1.5 (aim 1.0); lower is better',
        notes: `median of ${ROUNDS} interleaved rounds; process.cpuUsage() over defer -> delivery -> settle`,
      },
      {
        name: 'Redis CPU per task (INFO cpu deltas, private redis-server)',
        value: round3(redisOurs),
        unit: 'ms',
        baseline: { name: 'BullMQ, same Redis', value: round3(redisBull) },
        ratio: round3(redisOurs / redisBull),
        target: '<= 1.5; lower is better',
        notes: `per task: ${trips.toFixed(1)} round trips (commands sent; MONITOR count) and ${commands.toFixed(1)} commands executed (scripts' inner calls included) for cloud-defer; ${bullTrips.toFixed(1)} and ${mb((f) => f.redisCommandsPerTask).toFixed(1)} for BullMQ`,
      },
      {
        name: 'app CPU per task by stage: defer() (queue paused)',
        value: round3(deferStage),
        unit: 'ms',
        baseline: { name: 'floor: bare createTask with the official client, same emulator', value: round3(floorCreate) },
        ratio: round3(deferStage / floorCreate),
        notes: 'defer = encode + record in Redis + createTask; the floor is the gRPC call alone',
      },
      {
        name: 'app CPU per task by stage: delivery + settle (queue resumed)',
        value: round3(deliveryStage),
        unit: 'ms',
        baseline: { name: 'floor: a bare node:http request of the same size + the store round trips', value: round3(floorHttp + storeFloor) },
        ratio: round3(deliveryStage / (floorHttp + storeFloor)),
        notes: `bare HTTP request ${round3(floorHttp)} ms; one ioredis EVALSHA round trip ${round3(floorRedis)} ms x ${trips.toFixed(1)} round trips per task = ${round3(storeFloor)} ms. Delivery-phase CPU profile, share of busy samples: ${Object.entries(
          profile.shares,
        )
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`)
          .join(', ')}. Top self time: ${profile.top.join('; ')}`,
      },
      {
        name: `app-process CPU per task, one queue, against BullMQ with its jobs added at ${QUEUE_RATE}/s`,
        value: round3(appOurs),
        unit: 'ms',
        baseline: { name: `BullMQ Queue.add at ${QUEUE_RATE} jobs/s + Worker, same Redis`, value: round3(appBullAtQueueRate) },
        ratio: round3(appOurs / appBullAtQueueRate),
        notes:
          "the same arrival rate on both sides: one Cloud Tasks queue dispatches at most 500/s, so each delivery wakes the app on its own; BullMQ's jobs are made to arrive the same way",
      },
      {
        name: `Redis CPU per task, one queue, against BullMQ with its jobs added at ${QUEUE_RATE}/s`,
        value: round3(redisOurs),
        unit: 'ms',
        baseline: { name: `BullMQ at ${QUEUE_RATE} jobs/s, same Redis`, value: round3(redisBullAtQueueRate) },
        ratio: round3(redisOurs / redisBullAtQueueRate),
      },
      {
        name: `app CPU per task by stage: delivery + settle, one queue, against the floor at the same ${QUEUE_RATE}/s`,
        value: round3(deliveryStage),
        unit: 'ms',
        baseline: {
          name: `floor at ${QUEUE_RATE}/s: a bare node:http request + the store round trips, each sent at that rate`,
          value: round3(floorAtQueueRate),
        },
        ratio: round3(deliveryStage / floorAtQueueRate),
        notes: `bare HTTP request at ${QUEUE_RATE}/s ${round3(floorHttpAtQueueRate)} ms; one EVALSHA round trip at ${redisRateAtQueueRate}/s ${round3(floorRedisAtQueueRate)} ms x ${trips.toFixed(1)}`,
      },
      {
        name: `app-process CPU per task, ${saturatedName}`,
        value: round3(appSaturated),
        unit: 'ms',
        baseline: { name: 'BullMQ Queue.add + Worker, same Redis, same concurrency', value: round3(appBull) },
        ratio: round3(appSaturated / appBull),
        target: '<= 1.5 (aim 1.0); lower is better',
        notes: `the same run as above with the tasks spread over ${SATURATING_QUEUES} queues: one queue's 500/s cap (Cloud Tasks') leaves the app waking up per delivery`,
      },
      {
        name: `Redis CPU per task, ${saturatedName}`,
        value: round3(redisSaturated),
        unit: 'ms',
        baseline: { name: 'BullMQ, same Redis', value: round3(redisBull) },
        ratio: round3(redisSaturated / redisBull),
        target: '<= 1.5; lower is better',
      },
      {
        name: `app-process CPU per task, ${saturatedName}, ioredis client with enableAutoPipelining`,
        value: round3(mp((f) => f.total.appMsPerTask)),
        unit: 'ms',
        baseline: { name: 'BullMQ Queue.add + Worker, same Redis, same concurrency', value: round3(appBull) },
        ratio: round3(mp((f) => f.total.appMsPerTask) / appBull),
        target: '<= 1.5 (aim 1.0); lower is better',
      },
      {
        name: `Redis CPU per task, ${saturatedName}, ioredis client with enableAutoPipelining`,
        value: round3(mp((f) => f.total.redisMsPerTask)),
        unit: 'ms',
        baseline: { name: 'BullMQ, same Redis', value: round3(redisBull) },
        ratio: round3(mp((f) => f.total.redisMsPerTask) / redisBull),
        target: '<= 1.5; lower is better',
        notes: "the stores' client sends one tick's commands in one write (an ioredis option; the contract suite runs with it too)",
      },
      {
        name: `app CPU per task by stage: delivery + settle, ${saturatedName}`,
        value: round3(deliverySaturated),
        unit: 'ms',
        baseline: { name: 'floor: a bare node:http request of the same size + the store round trips', value: round3(floorHttp + storeFloor) },
        ratio: round3(deliverySaturated / (floorHttp + storeFloor)),
      },
      {
        name: 'app CPU per task against the floor of the design',
        value: round3(appOurs),
        unit: 'ms',
        baseline: { name: 'createTask + bare HTTP request + store round trips, same run', value: round3(floor) },
        ratio: round3(appOurs / floor),
        notes: 'how far the whole pipeline is from the sum of its unavoidable parts',
      },
    ];
  } finally {
    await emulator.stop();
    await redisServer.stop();
  }
}
