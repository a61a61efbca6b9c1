/**
 * The engine on Redis stores, end to end: status API, transactional defer with MULTI, the outbox
 * sweeper, and what happens when Redis goes away (own redis-server on a free port).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { redisStores } from '../../adapters/redis/index.js';
import { createEmulatorClient, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { CloudTasksTransport } from '../../src/queue/cloud-tasks.js';
import { MAX_HISTORY } from '../../src/core/records.js';
import { CloudDeferError, type DeferredTask } from '../../src/index.js';
import { eventually, startApp, type TestApp } from '../helpers/app.js';
import { deleteKeys, REDIS_HOST, REDIS_PORT, testPrefix } from './harness.js';
import { cuttingTransport } from '../helpers/transport.js';

describe('engine on Redis stores', () => {
  const prefix = testPrefix();
  let client: Redis;
  let app: TestApp;
  let runs = 0;
  let failures = 0;
  let flaky!: DeferredTask<[]>;

  before(async () => {
    client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    app = await startApp('express', { stores: redisStores({ client, prefix }), queues: [{ name: 'held' }] }, (d) => {
      d.task('count', () => {
        runs += 1;
      });
      flaky = d.task('flaky', () => {
        if (failures-- > 0) throw new Error(`failure ${failures}`);
      });
    });
  });
  after(async () => {
    await app.close();
    await deleteKeys(client, prefix);
    await client.quit();
  });

  it('runs a task and records it in Redis; getTask, findTask, listTasks and wait see it', async () => {
    const info = await app.deferred.defer('count', [], { reference: 'order-1', queue: 'default' });
    const record = await info.wait({ timeoutMs: 10_000 });
    assert.equal(record.status, 'succeeded');
    assert.equal((await app.deferred.findTask({ reference: 'order-1' }))?.id, info.id);
    const page = await app.deferred.listTasks({ status: 'succeeded', queue: 'default', taskName: 'count' });
    assert.ok(page.records.some((r) => r.id === info.id));
    assert.ok(await client.exists(`${prefix}:{${info.id.split('_')[0]}}:task:${info.id}`), 'raw key in Redis');
  });

  it('cancel: a cancelled task is acknowledged without running', async () => {
    const held = 'projects/local-project/locations/us-central1/queues/held';
    const tasks = createEmulatorClient(app.deferred.emulator!);
    await tasks.pauseQueue({ name: held });
    const before = runs;
    const info = await app.deferred.defer('count', [], { queue: 'held' });
    assert.equal((await app.deferred.cancel(info.id))?.status, 'cancelled');
    await tasks.resumeQueue({ name: held });
    await eventually(async () => (await tasks.listTasks({ parent: held }))[0].length === 0, 'the delivery');
    assert.equal(runs, before);
    await tasks.close();
  });

  it('keeps each attempt in the history, bounded', async () => {
    failures = MAX_HISTORY + 5;
    const info = await app.deferred.defer(flaky, [], { maxAttempts: MAX_HISTORY + 10 });
    await app.deferred.drain({ timeoutMs: 60_000 });
    const record = await info.wait();
    assert.equal(record.status, 'succeeded');
    assert.equal(record.attempts, MAX_HISTORY + 6);
    assert.equal(record.history.length, MAX_HISTORY);
    assert.equal(record.history.at(-1)!.statusCode, 200);
    assert.ok(record.history.every((h) => typeof h.at === 'number' && typeof h.durationMs === 'number'));
  });

  it('transactional defer: enqueued after EXEC, nothing on DISCARD', async () => {
    const multi = client.multi();
    multi.set(`${prefix}:user-data`, 'saved');
    const info = await app.deferred.defer('count', [], { transaction: multi });
    assert.equal(await app.deferred.getTask(info.id), undefined, 'nothing before EXEC');
    const before = runs;
    await multi.exec();
    await info.wait();
    assert.equal(runs, before + 1);

    const discarded = client.multi();
    const gone = await app.deferred.defer('count', [], { transaction: discarded });
    discarded.discard();
    await app.deferred.drain();
    assert.equal(await app.deferred.getTask(gone.id), undefined);
    assert.equal(runs, before + 1);
  });
});

describe('outbox sweeper on Redis (enqueue cut after EXEC)', () => {
  const prefix = testPrefix();
  let client: Redis;
  let emulator: EmulatorHandle;
  let app: TestApp;
  let transport: ReturnType<typeof cuttingTransport>;
  const runsById = new Map<string, number>();

  before(async () => {
    client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    emulator = await startEmulator({ port: 0 });
    transport = cuttingTransport(new CloudTasksTransport({ client: createEmulatorClient(emulator), projectId: 'local-project', location: 'us-central1' }));
    const serviceAccountEmail = 'tasks@local-project.iam.gserviceaccount.com';
    app = await startApp(
      'express',
      {
        stores: redisStores({ client, prefix }),
        transport,
        queues: [{ name: 'default' }],
        auth: { mode: 'oidc', serviceAccountEmail, jwks: emulator.jwks as never },
        target: { serviceAccountEmail },
      },
      (d) =>
        d.task('once', (n: number) => {
          runsById.set(String(n), (runsById.get(String(n)) ?? 0) + 1);
        }),
    );
  });
  after(async () => {
    await app.close();
    await transport.close();
    await emulator.stop();
    await deleteKeys(client, prefix);
    await client.quit();
  });

  it('100 commits whose enqueue was cut: the sweeper delivers each task exactly once', async () => {
    const ids: string[] = [];
    for (let n = 0; n < 100; n += 1) {
      const multi = client.multi();
      ids.push((await app.deferred.defer('once', [n], { transaction: multi })).id);
      transport.cutNext = 1;
      await multi.exec().catch(() => undefined);
    }
    assert.equal(runsById.size, 0, 'nothing ran: every enqueue was cut');
    // Two sweepers racing (two instances behind Cloud Scheduler) still make one task each.
    await Promise.all([app.deferred.sweepOutbox({ graceMs: 0 }), app.deferred.sweepOutbox({ graceMs: 0 })]);
    await app.deferred.drain({ timeoutMs: 60_000 });
    for (const id of ids) assert.equal((await app.deferred.getTask(id))?.status, 'succeeded');
    assert.equal(runsById.size, 100);
    assert.ok(
      [...runsById.values()].every((n) => n === 1),
      'each ran exactly once',
    );
    assert.deepEqual(await app.deferred.sweepOutbox({ graceMs: 0 }), { enqueued: 0 }, 'the outbox is empty');
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

/** A redis-server of the test's own, with an append-only file so a restart keeps its data. */
class OwnRedis {
  private child?: ChildProcess;
  readonly dir = mkdtempSync(path.join(tmpdir(), 'cd-redis-'));
  constructor(readonly port: number) {}

  async start(): Promise<void> {
    this.child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''],
      { stdio: 'ignore' },
    );
    const probe = new Redis({ host: '127.0.0.1', port: this.port, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
    await eventually(async () => (await probe.ping().catch(() => '')) === 'PONG', 'redis-server to start');
    probe.disconnect();
  }

  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }

  async remove(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('Redis going away', function () {
  this.timeout(120_000);
  let server: OwnRedis;
  let client: Redis;
  let app: TestApp;
  const runsById = new Map<number, number>();

  before(async () => {
    server = new OwnRedis(await freePort());
    await server.start();
    // Fail fast while disconnected (no offline queue), reconnect every 100 ms.
    client = new Redis({ host: '127.0.0.1', port: server.port, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
    client.on('error', () => undefined); // connection errors are expected here; the adapter reports them
    await eventually(() => client.status === 'ready', 'the client to connect');
    // A short claim retry, so deliveries during the outage are answered 503 (Cloud Tasks retries).
    app = await startApp('express', { stores: redisStores({ client, prefix: 'down' }), storeRetry: { acquireMs: 300 } }, (d) =>
      d.task('tick', (n: number) => {
        runsById.set(n, (runsById.get(n) ?? 0) + 1);
      }),
    );
  });
  after(async () => {
    await app.close();
    client.disconnect();
    await server.remove();
  });

  it('defer rejects with STORE_UNAVAILABLE and enqueues nothing; deliveries get 503 and complete after Redis returns', async () => {
    const info = await app.deferred.defer('tick', [-1]);
    await server.stop();
    await eventually(() => client.status !== 'ready', 'the client to notice');
    await assert.rejects(app.deferred.defer('tick', [-2]), (err: unknown) => {
      assert.ok(err instanceof CloudDeferError);
      assert.equal(err.code, 'STORE_UNAVAILABLE');
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
      return true;
    });
    const tasks = createEmulatorClient(app.deferred.emulator!);
    const [queued] = await tasks.listTasks({ parent: 'projects/local-project/locations/us-central1/queues/default' });
    assert.ok(queued.length <= 1, 'the refused defer enqueued nothing');
    await tasks.close();
    await server.start();
    await eventually(() => client.status === 'ready', 'the client to reconnect');
    await app.deferred.drain({ timeoutMs: 60_000 });
    assert.equal((await info.wait()).status, 'succeeded');
    assert.equal(runsById.get(-2), undefined);
  });

  it('a delivery while Redis is down is answered 503 and runs once Redis is back', async () => {
    const tasks = createEmulatorClient(app.deferred.emulator!);
    const parent = 'projects/local-project/locations/us-central1/queues/default';
    await tasks.pauseQueue({ name: parent });
    const info = await app.deferred.defer('tick', [-3]);
    await server.stop();
    await eventually(() => client.status !== 'ready', 'the client to notice');
    app.logger.lines.length = 0;
    await tasks.resumeQueue({ name: parent });
    await eventually(() => app.logger.lines.some((l) => /asking Cloud Tasks to retry/.test(l.message)), 'a 503 answer');
    const [[pending]] = await tasks.listTasks({ parent });
    assert.ok(pending && pending.dispatchCount! >= 1, 'Cloud Tasks keeps the task after the 503');
    assert.equal(pending.lastAttempt?.responseStatus?.code, 14, 'the 503 reached Cloud Tasks (UNAVAILABLE)');
    await server.start();
    await eventually(() => client.status === 'ready', 'the client to reconnect');
    await app.deferred.drain({ timeoutMs: 60_000 });
    assert.equal((await info.wait()).status, 'succeeded');
    assert.equal(runsById.get(-3), 1);
    await tasks.close();
  });

  it('a restart in the middle of 1,000 tasks: 1,000 succeeded, 0 lost, 0 run twice', async () => {
    runsById.clear();
    const ids: string[] = [];
    for (let n = 0; n < 1000; n += 1) ids.push((await app.deferred.defer('tick', [n])).id);
    await eventually(() => runsById.size >= 200, 'some tasks to run', 60_000);
    await server.stop();
    await new Promise((r) => setTimeout(r, 500));
    await server.start();
    await eventually(() => client.status === 'ready', 'the client to reconnect');
    await app.deferred.drain({ timeoutMs: 100_000 });
    let succeeded = 0;
    for (const id of ids) if ((await app.deferred.getTask(id))?.status === 'succeeded') succeeded += 1;
    const twice = [...runsById.values()].filter((n) => n > 1).length;
    assert.equal(succeeded, 1000);
    assert.equal(runsById.size, 1000, '0 lost');
    assert.equal(twice, 0, '0 run twice');
    assert.ok(
      app.logger.lines.some((l) => /unavailable/.test(l.message)),
      'deliveries met the outage',
    );
  });
});
