/**
 * Engine benchmarks (issue 3): defer() against a raw createTask on the same emulator, and a no-op
 * task through the Express middleware against a bare Express JSON POST route.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import { createDeferred, deferredMiddleware } from '../src/index.js';
import { createEmulatorClient } from '../src/emulator/index.js';
import type { BenchResult } from './types.js';
import { median, QUEUE_PARENT, timed } from './common.js';

const PARENT = QUEUE_PARENT;

/**
 * defer() of a small task vs a raw createTask of the same body, same emulator, paused queues.
 * Each round starts a fresh emulator and memory store, so neither side pays for what earlier
 * rounds left behind (tens of thousands of held tasks and records make the garbage collector the
 * largest cost otherwise); the two sides alternate which goes first.
 */
export async function benchDefer(): Promise<BenchResult[]> {
  const N = 3000;
  const C = 32;
  const ROUNDS = 7;
  const rawRuns: number[] = [];
  const deferRuns: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const deferred = createDeferred({ logger: false, queues: [{ name: 'bench-defer' }, { name: 'bench-raw' }] });
    deferred.task('noop', (_n: number) => undefined);
    deferred.setTargetUrl('http://127.0.0.1:9/_ah/queue/deferred');
    await deferred.ready();
    const client = createEmulatorClient(deferred.emulator!);
    await client.pauseQueue({ name: `${PARENT}/bench-defer` });
    await client.pauseQueue({ name: `${PARENT}/bench-raw` });
    const body = Buffer.from(JSON.stringify({ v: 1, task: 'noop', id: 'x'.repeat(32), args: [1] }));
    const raw = () =>
      client.createTask({
        parent: `${PARENT}/bench-raw`,
        task: {
          httpRequest: {
            url: 'http://127.0.0.1:9/_ah/queue/deferred',
            httpMethod: 'POST',
            headers: { 'Content-Type': 'application/vnd.cloud-defer+json' },
            body,
            oidcToken: { serviceAccountEmail: 'cloud-defer-tasks@local-project.iam.gserviceaccount.com' },
          },
        },
      });
    const viaDefer = (i: number) => deferred.defer('noop', [i], { queue: 'bench-defer' });
    await timed(300, C, raw);
    await timed(300, C, viaDefer);
    if (round % 2 === 0) {
      rawRuns.push(await timed(N, C, raw));
      deferRuns.push(await timed(N, C, viaDefer));
    } else {
      deferRuns.push(await timed(N, C, viaDefer));
      rawRuns.push(await timed(N, C, raw));
    }
    await client.close();
    await deferred.close();
  }
  const rawRate = median(rawRuns);
  const deferRate = median(deferRuns);
  return [
    {
      name: 'defer() of a small task (memory state), embedded emulator',
      value: Math.round(deferRate),
      unit: 'tasks/s',
      baseline: { name: 'raw CloudTasksClient.createTask of the same body, same emulator', value: Math.round(rawRate) },
      ratio: +(deferRate / rawRate).toFixed(3),
      target: '>= 0.9',
      notes: `${N} tasks per side x ${ROUNDS} rounds (fresh emulator each, order alternating), ${C} in flight, median; queues paused so dispatch does not compete`,
    },
  ];
}

function runLoad(spec: object): Promise<{ requests: number; ms: number; non2xx: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(__dirname, 'load.js'), JSON.stringify(spec)], { maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(JSON.parse(stdout) as { requests: number; ms: number; non2xx: number });
    });
  });
}

async function listen(server: http.Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A no-op task through the middleware (OIDC check, guard, run, settle) vs a bare JSON POST route. */
export async function benchHandler(): Promise<BenchResult[]> {
  const N = 6000;
  const C = 32;
  const dir = mkdtempSync(path.join(tmpdir(), 'cd-bench-'));

  // Baseline: a bare Express JSON POST route.
  const bare = express();
  bare.post('/work', express.json(), (req, res) => {
    res.json({ ok: true, n: (req.body as { n?: number }).n });
  });
  const bareServer = http.createServer(bare);
  const bareUrl = await listen(bareServer);
  const bareBodies = Array.from({ length: N }, (_, n) => Buffer.from(JSON.stringify({ n, task: 'noop', args: [n] })).toString('base64'));
  writeFileSync(path.join(dir, 'bare.json'), JSON.stringify(bareBodies));

  // cloud-defer: real records and envelopes, queued on a paused queue, delivered by the load generator
  // with a real emulator-signed token.
  const deferred = createDeferred({ logger: false, queues: [{ name: 'bench-handler' }] });
  deferred.task('noop', (_n: number) => undefined);
  const app = express();
  app.use(deferredMiddleware(deferred));
  const appServer = http.createServer(app);
  const appUrl = await listen(appServer);
  const handlerUrl = `${appUrl}${deferred.handlerPath}`;
  deferred.setTargetUrl(handlerUrl);
  await deferred.ready();
  const client = createEmulatorClient(deferred.emulator!);
  await client.pauseQueue({ name: `${PARENT}/bench-handler` });

  let token = '';
  const rounds = 5;
  const batches: string[][] = [];
  for (let r = 0; r < rounds + 1; r += 1) {
    const batch: string[] = [];
    for (let n = 0; n < N; n += 1) await deferred.defer('noop', [n], { queue: 'bench-handler' });
    let pageToken: string | undefined;
    do {
      const [tasks, , response] = await client.listTasks(
        { parent: `${PARENT}/bench-handler`, responseView: 'FULL', pageSize: 1000, ...(pageToken ? { pageToken } : {}) },
        { autoPaginate: false },
      );
      for (const t of tasks) {
        batch.push(Buffer.from(t.httpRequest!.body as Uint8Array).toString('base64'));
        await client.deleteTask({ name: t.name! });
      }
      pageToken = response?.nextPageToken || undefined;
    } while (pageToken);
    batches.push(batch);
  }
  // One real token, captured from an emulator dispatch to a recorder.
  const recorder = http.createServer((req, res) => {
    token = String(req.headers.authorization ?? '');
    res.end();
  });
  const recorderUrl = await listen(recorder);
  await deferred.defer('noop', [0], { url: `${recorderUrl}/capture`, audience: handlerUrl });
  while (!token) await new Promise((r) => setTimeout(r, 10));

  const headers = {
    'Content-Type': 'application/vnd.cloud-defer+json',
    Authorization: token,
    'X-CloudTasks-QueueName': 'bench-handler',
    'X-CloudTasks-TaskRetryCount': '0',
    'X-CloudTasks-TaskExecutionCount': '0',
  };
  const bareRates: number[] = [];
  const appRates: number[] = [];
  // Warm-up round for both.
  writeFileSync(path.join(dir, 'app-0.json'), JSON.stringify(batches[0]));
  await runLoad({ url: `${bareUrl}/work`, headers: { 'Content-Type': 'application/json' }, bodiesFile: path.join(dir, 'bare.json'), concurrency: C });
  const warm = await runLoad({ url: handlerUrl, headers, bodiesFile: path.join(dir, 'app-0.json'), concurrency: C });
  if (warm.non2xx > 0) throw new Error(`handler bench: ${warm.non2xx} non-2xx answers in warm-up`);
  const bareRound = async () => {
    const b = await runLoad({
      url: `${bareUrl}/work`,
      headers: { 'Content-Type': 'application/json' },
      bodiesFile: path.join(dir, 'bare.json'),
      concurrency: C,
    });
    bareRates.push((b.requests / b.ms) * 1000);
  };
  const appRound = async (r: number) => {
    writeFileSync(path.join(dir, `app-${r}.json`), JSON.stringify(batches[r]));
    const a = await runLoad({ url: handlerUrl, headers, bodiesFile: path.join(dir, `app-${r}.json`), concurrency: C });
    if (a.non2xx > 0) throw new Error(`handler bench: ${a.non2xx} non-2xx answers`);
    appRates.push((a.requests / a.ms) * 1000);
  };
  // Interleaved, alternating which side goes first, so neither always runs on a warmer or colder machine.
  for (let r = 1; r <= rounds; r += 1) {
    if (r % 2 === 1) {
      await bareRound();
      await appRound(r);
    } else {
      await appRound(r);
      await bareRound();
    }
  }
  const done = await deferred.listTasks({ status: 'succeeded', limit: 1 });
  if (done.records.length === 0) throw new Error('handler bench: no task recorded succeeded');
  await client.close();
  await deferred.close();
  for (const s of [bareServer, appServer, recorder]) {
    s.closeAllConnections();
    s.close();
  }
  const bareRate = median(bareRates);
  const appRate = median(appRates);
  return [
    {
      name: 'no-op task through deferredMiddleware (OIDC verify, guard, run, settle; memory state)',
      value: Math.round(appRate),
      unit: 'requests/s',
      baseline: { name: 'bare Express 5 JSON POST route', value: Math.round(bareRate) },
      ratio: +(appRate / bareRate).toFixed(3),
      target: '>= 0.85',
      notes: `${N} requests x ${rounds} rounds (interleaved, order alternating), ${C} in flight from a separate load process, median round`,
    },
  ];
}

/**
 * deferMany() against a loop of defer() calls at the same concurrency, same emulator, paused
 * queue (issue 16). Fresh emulator and memory store per round; the two sides alternate first.
 */
export async function benchDeferMany(): Promise<BenchResult[]> {
  const N = 3000;
  const C = 32;
  const ROUNDS = 5;
  const loopRuns: number[] = [];
  const bulkRuns: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const deferred = createDeferred({ logger: false, telemetry: false, queues: [{ name: 'bench-bulk' }] });
    deferred.task('noop', (_n: number) => undefined);
    deferred.setTargetUrl('http://127.0.0.1:9/_ah/queue/deferred');
    await deferred.ready();
    await deferred.pauseQueue('bench-bulk');
    const items = Array.from({ length: N }, (_, n) => [n] as [number]);
    const loop = () => timed(N, C, (i) => deferred.defer('noop', [i], { queue: 'bench-bulk' }));
    const bulk = async () => {
      const started = performance.now();
      const results = await deferred.deferMany('noop', items, { queue: 'bench-bulk', concurrency: C });
      if (results.some((r) => !r.ok)) throw new Error('deferMany reported failures');
      return (N / (performance.now() - started)) * 1000;
    };
    await timed(300, C, (i) => deferred.defer('noop', [i], { queue: 'bench-bulk' }));
    if (round % 2 === 0) {
      loopRuns.push(await loop());
      bulkRuns.push(await bulk());
    } else {
      bulkRuns.push(await bulk());
      loopRuns.push(await loop());
    }
    await deferred.close();
  }
  const loopRate = median(loopRuns);
  const bulkRate = median(bulkRuns);
  return [
    {
      name: 'deferMany() of small tasks (memory state), embedded emulator',
      value: Math.round(bulkRate),
      unit: 'tasks/s',
      baseline: { name: `a loop of defer() calls, ${C} in flight, same emulator`, value: Math.round(loopRate) },
      ratio: +(bulkRate / loopRate).toFixed(3),
      notes: `${N} tasks per side x ${ROUNDS} rounds (fresh emulator each, order alternating), ${C} in flight, median; queue paused; deferMany names its tasks (hashed) so retries are de-duplicated`,
    },
  ];
}

/**
 * First defer() after listen() vs the tenth, in a fresh process as a user starts it (the built
 * package, default instance, embedded emulator): mounting starts the engine and warms the
 * createTask and delivery paths, so the first defer should cost what the next ones do. Three
 * fresh processes; the figures are the medians of the rounds.
 */
export async function benchFirstDefer(): Promise<BenchResult[]> {
  const ROUNDS = 3;
  const script = `
const express = require('express');
const { task, deferredMiddleware, ready } = require('cloud-defer');
const t = task('benchFirst', () => {});
const app = express();
app.use(deferredMiddleware());
const server = app.listen(Number(process.env.PORT), async () => {
  await ready(); // what the app would be doing anyway between listen and its first request
  const times = [];
  for (let i = 0; i < 10; i++) { const a = performance.now(); await t.defer(); times.push(performance.now() - a); }
  console.log(JSON.stringify(times));
  server.close(); process.exit(0);
});`;
  const root = path.resolve(__dirname, '..', '..');
  // In the repository, so require('cloud-defer') resolves to the built package (its self-reference).
  const file = path.join(root, `.bench-first-${process.pid}.cjs`);
  writeFileSync(file, script);
  const firsts: number[] = [];
  const tenths: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const server = http.createServer().listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as AddressInfo).port;
      server.close();
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [file], { cwd: root, env: { ...process.env, PORT: String(port) } }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
      );
      const times = JSON.parse(out.trim().split('\n').pop()!) as number[];
      firsts.push(times[0]!);
      tenths.push(times[9]!);
    }
  } finally {
    rmSync(file, { force: true });
  }
  const first = median(firsts);
  const tenth = median(tenths);
  return [
    {
      name: 'first defer() after listen() (fresh process, default instance, embedded emulator)',
      value: Math.round(first * 10) / 10,
      unit: 'ms',
      baseline: { name: 'tenth defer() of the same runs', value: Math.round(tenth * 10) / 10 },
      ratio: Math.round((first / tenth) * 100) / 100,
      target: 'ratio <= 2',
      notes: `median of ${ROUNDS} fresh processes; firsts ${firsts.map((t) => t.toFixed(1)).join(', ')} ms, tenths ${tenths.map((t) => t.toFixed(1)).join(', ')} ms; lower is better`,
    },
  ];
}
