/**
 * Issue 13, points 5-7: hostile thrown values always settle; a failed start-up and a lost or
 * restarted emulator recover; drain() counts what settled before it was called. Real Redis,
 * the emulator in its own process.
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { redisStores, type RedisStores } from '../../adapters/redis/index.js';
import { deleteKeys, REDIS_HOST, REDIS_PORT, testPrefix } from '../redis/harness.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { freePort, startEmulatorProcess, type EmulatorProcess } from './helpers/processes.js';
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createDeferred, deferredMiddleware, type CreateDeferredOptions, type DeferredTask } from '../../src/index.js';

const QUEUES = [{ name: 'default', retryConfig: { minBackoffSeconds: 0.1, maxBackoffSeconds: 0.2, maxAttempts: 100 } }];

function hostileValues(): Array<[string, () => unknown]> {
  const circular = new Error('circular') as Error & { self?: unknown };
  circular.self = circular;
  (circular as { cause?: unknown }).cause = circular;
  const throwingGetter = (key: string) => {
    const err = new Error('x');
    Object.defineProperty(err, key, {
      get() {
        throw new Error(`${key} getter`);
      },
    });
    return err;
  };
  const trapAll = new Proxy(
    {},
    {
      get() {
        throw new Error('trap');
      },
      getPrototypeOf() {
        throw new Error('trap');
      },
      ownKeys() {
        throw new Error('trap');
      },
    },
  );
  return [
    ['null', () => null],
    ['undefined', () => undefined],
    ['a number', () => 42],
    ['NaN', () => Number.NaN],
    ['a string', () => 'plain string'],
    ['a symbol', () => Symbol('thrown')],
    ['a bigint', () => 10n],
    ['a frozen object', () => Object.freeze({ message: 'frozen' })],
    ['a null-prototype object', () => Object.create(null)],
    ['a Proxy whose every trap throws', () => trapAll],
    ['a Proxy of an Error', () => new Proxy(new Error('proxied'), {})],
    ['an Error whose message getter throws', () => throwingGetter('message')],
    ['an Error whose stack getter throws', () => throwingGetter('stack')],
    ['an Error whose code getter throws', () => throwingGetter('code')],
    ['a circular Error', () => circular],
    ['an AggregateError', () => new AggregateError([new Error('one'), 'two'], 'many')],
    ['a DOMException', () => new DOMException('aborted', 'AbortError')],
  ];
}

interface Setup {
  emulator: EmulatorProcess;
  client: Redis;
  stores: RedisStores;
  prefix: string;
}

async function setUp(): Promise<Setup> {
  const emulator = await startEmulatorProcess(await freePort());
  emulator.useFromEnv();
  const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  const prefix = testPrefix();
  return { emulator, client, stores: redisStores({ client, prefix }), prefix };
}

async function tearDown(s: Setup, app?: TestApp): Promise<void> {
  await app?.close();
  await s.emulator.kill();
  delete process.env.CLOUD_TASKS_EMULATOR_HOST;
  delete process.env.CLOUD_TASKS_EMULATOR_JWKS_URI;
  await deleteKeys(s.client, s.prefix);
  s.client.disconnect();
}

describe('reliability: failure paths always settle (issue 13.5)', function () {
  this.timeout(60_000);

  it('settles each of 17 hostile thrown values with a readable error and the answers README gives', async () => {
    const s = await setUp();
    const values = hostileValues();
    assert.equal(values.length, 17);
    let thrower!: DeferredTask<[number]>;
    const app = await startApp('express', { stores: s.stores, queues: QUEUES, logger: false } as CreateDeferredOptions, (d) => {
      thrower = d.task('throw-hostile', (i: number) => {
        throw values[i]![1]();
      });
    });
    try {
      const infos = await Promise.all(values.map((_, i) => thrower.with({ maxAttempts: 2 }).defer(i)));
      const records = await Promise.all(infos.map((info) => info.wait({ timeoutMs: 30_000 })));
      records.forEach((record, i) => {
        const what = values[i]![0];
        assert.equal(record.status, 'failed', what);
        assert.ok(typeof record.lastError?.message === 'string' && record.lastError.message.length > 0, `${what}: readable error`);
        // README: "throws anything else" -> retrying, 500; "fails its last maxAttempts" -> failed, 200.
        assert.deepEqual(
          record.history.map((h) => [h.outcome, h.statusCode]),
          [
            ['retrying', 500],
            ['failed', 200],
          ],
          what,
        );
      });
    } finally {
      await tearDown(s, app);
    }
  });
});

describe('reliability: the transport recovers (issue 13.6)', function () {
  this.timeout(60_000);

  it('retries a failed start-up on the next defer: 10 defers succeed once the service answers', async () => {
    const port = await freePort();
    process.env.CLOUD_TASKS_EMULATOR_HOST = `127.0.0.1:${port}`;
    const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    const prefix = testPrefix();
    let ran = 0;
    // auth 'none' (a developer machine): this test is about the transport, and the emulator's key set does not exist yet.
    const deferred = createDeferred({ stores: redisStores({ client, prefix }), queues: QUEUES, logger: false, auth: { mode: 'none' } });
    const task = deferred.task('count', () => {
      ran += 1;
    });
    const app = express();
    app.use(deferredMiddleware(deferred));
    const server = http.createServer(app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    deferred.setTargetUrl(`http://127.0.0.1:${(server.address() as AddressInfo).port}${deferred.handlerPath}`);
    await assert.rejects(task.defer(), 'the first start-up fails: nothing listens yet');
    const emulator = await startEmulatorProcess(port);
    const live = {
      close: async () => {
        await deferred.close();
        server.closeAllConnections();
        server.close();
      },
    };
    try {
      const infos = await Promise.all(Array.from({ length: 10 }, () => task.defer()));
      const records = await Promise.all(infos.map((info) => info.wait({ timeoutMs: 20_000 })));
      assert.deepEqual(
        records.map((r) => r.status),
        Array(10).fill('succeeded'),
      );
      assert.equal(ran, 10);
    } finally {
      await live.close();
      await emulator.kill();
      delete process.env.CLOUD_TASKS_EMULATOR_HOST;
      delete process.env.CLOUD_TASKS_EMULATOR_JWKS_URI;
      await deleteKeys(client, prefix);
      client.disconnect();
    }
  });
});

describe('reliability: an emulator that restarts (issue 13.6)', function () {
  this.timeout(60_000);

  it('runs new tasks after the emulator process is killed and started again on its port', async () => {
    const s = await setUp();
    let ran = 0;
    let task!: DeferredTask<[]>;
    // auth 'none': a restarted emulator signs with new keys at a new URI; this test is about the transport.
    const app = await startApp('express', { stores: s.stores, queues: QUEUES, logger: false, auth: { mode: 'none' } } as CreateDeferredOptions, (d) => {
      task = d.task('count-after-restart', () => {
        ran += 1;
      });
    });
    try {
      assert.equal((await (await task.defer()).wait()).status, 'succeeded');
      const port = Number(s.emulator.address.split(':')[1]);
      await s.emulator.kill('SIGKILL');
      s.emulator = await startEmulatorProcess(port);
      const infos = await Promise.all(Array.from({ length: 5 }, () => task.defer()));
      const records = await Promise.all(infos.map((info) => info.wait({ timeoutMs: 20_000 })));
      assert.deepEqual(
        records.map((r) => r.status),
        Array(5).fill('succeeded'),
      );
      assert.equal(ran, 6);
    } finally {
      await tearDown(s, app);
    }
  });
});

describe('reliability: drain() counts what settled before it was called (issue 13.7)', function () {
  this.timeout(60_000);

  it('throwOnFailure sees 20 failures that settled before the call; a mark starts the count afresh', async () => {
    const s = await setUp();
    let fails!: DeferredTask<[]>;
    let works!: DeferredTask<[]>;
    const app = await startApp('express', { stores: s.stores, queues: QUEUES, logger: false } as CreateDeferredOptions, (d) => {
      fails = d.task('always-fails', () => {
        throw new Error('nope');
      });
      works = d.task('works', () => undefined);
    });
    try {
      const failed = await Promise.all(Array.from({ length: 20 }, () => fails.with({ maxAttempts: 1 }).defer()));
      const ok = await Promise.all(Array.from({ length: 5 }, () => works.defer()));
      await Promise.all([...failed, ...ok].map((info) => info.wait({ timeoutMs: 20_000 })));
      await assert.rejects(app.deferred.drain({ throwOnFailure: true }), /20 task\(s\) failed/);
      const all = await app.deferred.drain();
      assert.equal(all.succeeded, 5);
      assert.equal(all.failed.length, 20);
      const mark = app.deferred.mark();
      await (await works.defer()).wait();
      const since = await app.deferred.drain({ since: mark, throwOnFailure: true });
      assert.equal(since.succeeded, 1);
      assert.equal(since.failed.length, 0);
    } finally {
      await tearDown(s, app);
    }
  });
});

describe('reliability: the record follows the queue that gives up (issue 13.4)', function () {
  this.timeout(60_000);

  it("takes the queue's maxAttempts at defer time: the last attempt ends failed and frees the reference", async () => {
    const s = await setUp();
    const queues = [...QUEUES, { name: 'gives-up', retryConfig: { maxAttempts: 2, minBackoffSeconds: 0.1, maxBackoffSeconds: 0.2 } }];
    let fails!: DeferredTask<[]>;
    const app = await startApp('express', { stores: s.stores, queues, logger: false } as CreateDeferredOptions, (d) => {
      fails = d.task('fails-on-small-queue', () => {
        throw new Error('always');
      });
    });
    try {
      const first = await fails.with({ queue: 'gives-up', reference: 'small-queue-ref' }).defer();
      const record = await first.wait({ timeoutMs: 20_000 });
      assert.equal(record.status, 'failed');
      assert.deepEqual(
        record.history.map((h) => h.statusCode),
        [500, 200],
        'the second (last) attempt is acknowledged, not left retrying',
      );
      const again = await fails.with({ queue: 'gives-up', reference: 'small-queue-ref', onDuplicate: 'throw' }).defer();
      assert.equal(again.duplicate, false);
      assert.notEqual(again.id, first.id);
      assert.equal((await again.wait({ timeoutMs: 20_000 })).status, 'failed');
    } finally {
      await tearDown(s, app);
    }
  });
  it("follows the queue's maxRetryDuration: attempts go on past maxAttempts until the duration has passed, then the record ends failed", async () => {
    const s = await setUp();
    // Cloud Tasks' rule: with both limits set, retries stop only once both are reached.
    const queues = [
      ...QUEUES,
      { name: 'gives-up-in-time', retryConfig: { maxAttempts: 2, maxRetryDurationSeconds: 1.5, minBackoffSeconds: 0.1, maxBackoffSeconds: 0.2 } },
    ];
    let fails!: DeferredTask<[]>;
    const app = await startApp('express', { stores: s.stores, queues, logger: false } as CreateDeferredOptions, (d) => {
      fails = d.task('fails-for-a-while', () => {
        throw new Error('always');
      });
    });
    try {
      const info = await fails.with({ queue: 'gives-up-in-time', reference: 'timed-queue-ref' }).defer();
      // The last attempt ends the record failed when the delivery sees the duration passed; when the
      // queue gives up first (the two clocks meet at the boundary), the Cloud Scheduler sweep does:
      // it only acts on records whose Cloud Task is gone, so sweeping while attempts go on is safe.
      let record = await app.deferred.getTask(info.id);
      const deadline = Date.now() + 20_000;
      while (record && record.status !== 'failed' && Date.now() < deadline) {
        await app.deferred.sweep({ graceMs: 0 });
        await new Promise((resolve) => setTimeout(resolve, 300));
        record = await app.deferred.getTask(info.id);
      }
      assert.ok(record, 'the record is kept');
      assert.equal(record.status, 'failed', `the record ends failed after the duration (${record.status})`);
      const codes = record.history.map((h) => h.statusCode);
      assert.ok(record.attempts > 2, `more attempts than maxAttempts while the duration lasts (${record.attempts})`);
      assert.ok(
        codes.slice(0, -1).every((c) => c === 500),
        `every attempt but the last asked for a retry: ${codes.join(',')}`,
      );
      // Ended only once the duration had passed: measured to when the record ended failed (by the
      // last delivery or the sweep), as a run's own start can lag its dispatch on a loaded machine.
      const first = record.history[0]!.at;
      const ended = record.finishedAt ?? 0;
      assert.ok(ended - first >= 1_000, `the record ended failed ${ended - first} ms after the first attempt, before the 1.5 s retry duration`);
      const again = await fails.with({ queue: 'gives-up-in-time', reference: 'timed-queue-ref', onDuplicate: 'throw' }).defer();
      assert.equal(again.duplicate, false, 'the reference is free again');
    } finally {
      await tearDown(s, app);
    }
  });
});
