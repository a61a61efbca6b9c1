/**
 * An app in its own process, for tests that SIGTERM or SIGKILL it: Express + Redis stores + an
 * external emulator (CLOUD_TASKS_EMULATOR_HOST). It shuts down the way README's recipe says.
 * env: APP_PORT, REDIS_PREFIX, GRACE_MS, and optionally MAX_ATTEMPTS (the queue's) and
 * HEARTBEAT_MS (heartbeatLeaseMs). Prints "READY <port>" once listening.
 * Task "work"(key, firstRunMs, laterRunMs): counts its runs in Redis from inside the task.
 * Task "count"(key, runMs): counts runs started and runs completed, in Redis, from inside the task;
 * the completion commits with the record's success (currentTask().recordSuccessIn).
 * Task "cut"(key, cutRuns): counts its runs; the first cutRuns wait to be killed, later ones finish.
 */
import * as http from 'node:http';
import express from 'express';
import Redis from 'ioredis';
import { redisStores } from '../../../adapters/redis/index.js';
import { createDeferred, currentTask, deferredMiddleware } from '../../../src/index.js';

const port = Number(process.env.APP_PORT);
const prefix = process.env.REDIS_PREFIX!;
const client = new Redis({ host: '127.0.0.1', port: 6379 });
const stores = redisStores({ client, prefix });
const deferred = createDeferred({
  stores,
  queues: [
    {
      name: 'default',
      retryConfig: {
        minBackoffSeconds: 0.1,
        maxBackoffSeconds: 0.5,
        ...(process.env.MAX_ATTEMPTS ? { maxAttempts: Number(process.env.MAX_ATTEMPTS) } : {}),
      },
    },
  ],
  ...(process.env.HEARTBEAT_MS ? { heartbeatLeaseMs: Number(process.env.HEARTBEAT_MS) } : {}),
  logger: process.env.APP_LOG ? undefined : false,
  target: { url: `http://127.0.0.1:${port}/_ah/queue/deferred` },
});
deferred.task('work', async (key: string, firstRunMs: number, laterRunMs: number) => {
  const runs = await client.incr(`${prefix}:runs:${key}`);
  await new Promise((resolve) => setTimeout(resolve, runs === 1 ? firstRunMs : laterRunMs));
  await client.incr(`${prefix}:done:${key}`);
});
deferred.task('count', async (key: string, runMs: number) => {
  await client.incr(`${prefix}:started:${key}`);
  await new Promise((resolve) => setTimeout(resolve, runMs));
  // The completion and the record's `succeeded` commit in one MULTI, so a kill after it does not
  // have the task run again (and a run that lost its lease cannot commit). Which process
  // completed it is kept to explain a failure.
  await stores.transaction(async (multi) => {
    multi.incr(`${prefix}:completed:${key}`).rpush(`${prefix}:completedBy:${key}`, String(process.pid));
    await currentTask()!.recordSuccessIn(multi);
  });
});

// Its first `cutRuns` runs wait (for the test to SIGKILL the app under them); a later run finishes.
deferred.task('cut', async (key: string, cutRuns: number) => {
  const run = await client.incr(`${prefix}:runs:${key}`);
  if (run <= cutRuns) await new Promise((resolve) => setTimeout(resolve, 600_000));
  await client.incr(`${prefix}:done:${key}`);
});

const app = express();
app.use(deferredMiddleware(deferred));
const server = http.createServer(app);
// STANDBY: loaded and waiting for "GO" on stdin before it listens, as a new instance is started
// while the old one still serves (on a loaded machine, loading the modules takes seconds).
if (process.env.STANDBY) {
  process.stdin.once('data', () => listen());
} else listen();

function listen(): void {
  server.listen(port, '127.0.0.1', () => {
    // READY_ON_LISTEN: deliveries need only the stores, so the app serves before its transport is up.
    const started = deferred.ready();
    if (process.env.READY_ON_LISTEN) process.stdout.write(`READY ${port}\n`);
    else void started.then(() => process.stdout.write(`READY ${port}\n`));
  });
}

// README's SIGTERM recipe: stop accepting connections, let runs finish, release the rest, exit.
process.on('SIGTERM', () => {
  server.close();
  void deferred.close({ graceMs: Number(process.env.GRACE_MS ?? 8000) }).finally(() => {
    client.disconnect();
    process.exit(0);
  });
});
