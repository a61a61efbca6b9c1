/**
 * The Redis TransactionHook against a real server, without the engine: stage a defer into the
 * user's MULTI next to their own writes and check what EXEC leaves behind, read raw.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { redisStores, type RedisStores } from '../../adapters/redis/index.js';
import type { TaskRecord } from '../../src/core/records.js';
import type { StagedDefer, TransactionHook } from '../../src/core/stores.js';
import type { RawBackend } from '../contract/suite.js';
import { deleteKeys, REDIS_HOST, REDIS_PORT, testPrefix, whenReady } from './harness.js';
import { redisRawBackend } from './raw.js';

const HOUR = 3_600_000;

function stagedDefer(stores: RedisStores, fields: Partial<TaskRecord> = {}, withPayload = true): StagedDefer {
  const now = Date.now();
  const id = stores.state.newTaskId(fields.reference);
  const record: TaskRecord = {
    id,
    taskName: 'tx.task',
    queue: 'default',
    status: 'queued',
    createdAt: now,
    updatedAt: now,
    eta: now,
    attempts: 0,
    executionCount: 0,
    payloadSize: 200_000,
    payloadRef: withPayload ? id : undefined,
    history: [],
    version: 1,
    expiresAt: now + HOUR,
    ...fields,
  };
  return {
    record,
    outbox: {
      taskId: id,
      createdAt: now,
      request: {
        queue: 'default',
        bodyBase64: Buffer.from('{}').toString('base64'),
        headers: {},
        target: { kind: 'appEngine', relativeUri: '/_ah/queue/deferred' },
      },
    },
    payload: withPayload ? { id, data: Buffer.alloc(200_000, 7), ttlMs: HOUR } : undefined,
  };
}

/** An afterCommit that counts its runs. */
function counter(): { afterCommit: () => Promise<void>; runs: () => number } {
  let runs = 0;
  return {
    afterCommit: async () => {
      runs += 1;
    },
    runs: () => runs,
  };
}

describe('redis TransactionHook (MULTI/EXEC)', function () {
  let client: Redis;
  let other: Redis;
  let prefix: string;
  let stores: RedisStores;
  let hook: TransactionHook;
  let raw: RawBackend;

  before(async function () {
    prefix = testPrefix();
    client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    other = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    await Promise.all([whenReady(client), whenReady(other)]);
    stores = redisStores({ client, prefix });
    hook = stores.transactions[0];
    raw = redisRawBackend(other, prefix);
  });

  after(async function () {
    await stores.close();
    await deleteKeys(other, prefix);
    await Promise.all([client.quit(), other.quit()]);
  });

  async function assertNothingWritten(staged: StagedDefer): Promise<void> {
    assert.equal(await raw.rawTask(staged.record.id), undefined, 'no record');
    assert.equal(await raw.rawOutbox(staged.outbox.taskId), undefined, 'no outbox entry');
    assert.equal(await raw.rawPayload(staged.payload!.id), undefined, 'no payload');
  }

  it('accepts a MULTI or a pipeline of its own client only', async function () {
    assert.equal(hook.name, 'redis');
    assert.ok(hook.accepts(client.multi()));
    assert.ok(hook.accepts(client.pipeline()), 'a pipeline: the defer is written when it runs');
    assert.ok(!hook.accepts(other.multi()), "another client's MULTI");
    assert.ok(!hook.accepts(client));
    assert.ok(!hook.accepts({ exec() {} }));
    assert.ok(!hook.accepts(undefined));
  });

  it("writes record, outbox entry and payload with the user's own writes, then runs afterCommit once", async function () {
    const staged = stagedDefer(stores);
    const userKey = `${prefix}:user:${randomUUID()}`;
    const { afterCommit, runs } = counter();
    const tx = client.multi().set(userKey, 'before');
    assert.ok(hook.accepts(tx));
    await hook.stage(tx, staged, afterCommit);
    tx.incr(`${userKey}:count`);
    assert.equal(runs(), 0);
    await assertNothingWritten(staged);

    const results = await tx.exec();
    assert.deepEqual(
      results?.map(([error]) => error),
      [null, null, null],
    );
    assert.equal(results?.[0]?.[1], 'OK');
    assert.equal(results?.[2]?.[1], 1);
    assert.equal(runs(), 1, 'afterCommit ran once');
    assert.equal(await other.get(userKey), 'before');
    assert.deepEqual(await raw.rawTask(staged.record.id), JSON.parse(JSON.stringify(staged.record)));
    assert.deepEqual(await raw.rawOutbox(staged.outbox.taskId), staged.outbox);
    assert.ok(Buffer.from((await raw.rawPayload(staged.payload!.id))!).equals(Buffer.from(staged.payload!.data)));
    assert.equal(await raw.rawTaskExpiry(staged.record.id), staged.record.expiresAt);
    assert.deepEqual(await stores.state.listOutbox(Date.now() + 1, 1000).then((entries) => entries.some((e) => e.taskId === staged.record.id)), true);
    const listed = await stores.state.listTasks({ queue: 'default', status: 'queued', limit: 1000 });
    assert.ok(
      listed.records.some((record) => record.id === staged.record.id),
      'indexed in the same EXEC',
    );
  });

  it('stages several defers in one MULTI; each afterCommit runs once', async function () {
    const first = stagedDefer(stores);
    const second = stagedDefer(stores, {}, false);
    const a = counter();
    const b = counter();
    const tx = client.multi();
    await hook.stage(tx, first, a.afterCommit);
    tx.set(`${prefix}:between`, '1');
    await hook.stage(tx, second, b.afterCommit);
    await tx.exec();
    assert.equal(a.runs(), 1);
    assert.equal(b.runs(), 1);
    assert.ok(await raw.rawTask(first.record.id));
    assert.ok(await raw.rawTask(second.record.id));
  });

  it('a WATCH conflict (EXEC answers null) writes nothing and never runs afterCommit', async function () {
    const staged = stagedDefer(stores);
    const watched = `${prefix}:watched:${randomUUID()}`;
    const { afterCommit, runs } = counter();
    await client.watch(watched);
    const tx = client.multi().set(`${watched}:mine`, 'x');
    await hook.stage(tx, staged, afterCommit);
    await other.set(watched, 'changed by someone else');
    assert.equal(await tx.exec(), null);
    assert.equal(runs(), 0);
    await assertNothingWritten(staged);
    assert.equal(await other.get(`${watched}:mine`), null);
  });

  it('a MULTI that is dropped, or DISCARDed, writes nothing and never runs afterCommit', async function () {
    const dropped = stagedDefer(stores);
    const droppedRuns = counter();
    const neverSent = client.multi();
    await hook.stage(neverSent, dropped, droppedRuns.afterCommit);

    const discarded = stagedDefer(stores);
    const discardedRuns = counter();
    const tx = client.multi();
    await hook.stage(tx, discarded, discardedRuns.afterCommit);
    tx.discard();
    await assert.rejects(tx.exec());

    assert.equal(droppedRuns.runs(), 0);
    assert.equal(discardedRuns.runs(), 0);
    await assertNothingWritten(dropped);
    await assertNothingWritten(discarded);
  });

  it('EXECABORT (a command refused while queueing) writes nothing and never runs afterCommit', async function () {
    const staged = stagedDefer(stores);
    const { afterCommit, runs } = counter();
    const tx = client.multi().set(`${prefix}:aborted`, 'x');
    await hook.stage(tx, staged, afterCommit);
    tx.call('SET', `${prefix}:missing-value`); // wrong number of arguments
    await assert.rejects(tx.exec(), /EXECABORT/);
    assert.equal(runs(), 0);
    await assertNothingWritten(staged);
    assert.equal(await other.get(`${prefix}:aborted`), null);
  });

  it('with exec(callback), the callback gets the results after afterCommit ran', async function () {
    const staged = stagedDefer(stores);
    const { afterCommit, runs } = counter();
    const tx = client.multi();
    await hook.stage(tx, staged, afterCommit);
    const results = await new Promise<unknown>((resolve, reject) => {
      void tx.exec((error, value) => {
        if (error) reject(error);
        else {
          assert.equal(runs(), 1);
          resolve(value);
        }
      });
    });
    assert.ok(Array.isArray(results));
    assert.ok(await raw.rawTask(staged.record.id));
  });

  it('a reference still held elsewhere: the defer writes nothing, afterCommit does not run, the user writes commit', async function () {
    const reference = `tx-ref-${randomUUID()}`;
    const holder = stagedDefer(stores, { reference });
    assert.deepEqual(await stores.state.createTask(holder.record, Date.now()), { created: true });
    const staged = stagedDefer(stores, { reference });
    const { afterCommit, runs } = counter();
    const userKey = `${prefix}:user:${randomUUID()}`;
    const tx = client.multi().set(userKey, 'committed');
    await hook.stage(tx, staged, afterCommit);
    const results = await tx.exec();
    assert.ok(results && results.every(([error]) => !error));
    assert.equal(runs(), 0);
    await assertNothingWritten(staged);
    assert.equal(await other.get(userKey), 'committed');
    assert.equal((await stores.state.findByReference(reference))?.id, holder.record.id);
  });

  it('another command failing at EXEC: Redis keeps the defer (no rollback), afterCommit waits for the outbox sweeper', async function () {
    const staged = stagedDefer(stores);
    const { afterCommit, runs } = counter();
    const listKey = `${prefix}:a-list`;
    await other.rpush(listKey, 'x');
    const tx = client.multi().incr(listKey); // WRONGTYPE at EXEC time
    await hook.stage(tx, staged, afterCommit);
    const results = await tx.exec();
    assert.match(String(results?.[0]?.[0]), /WRONGTYPE/);
    assert.equal(runs(), 0);
    assert.ok(await raw.rawTask(staged.record.id));
    assert.deepEqual(await raw.rawOutbox(staged.outbox.taskId), staged.outbox, 'left for the outbox sweeper');
  });

  it('a failing afterCommit rejects exec after the transaction committed; other afterCommits still run', async function () {
    const failing = stagedDefer(stores);
    const fine = stagedDefer(stores);
    const { afterCommit, runs } = counter();
    const tx = client.multi();
    await hook.stage(tx, failing, async () => {
      throw new Error('enqueue failed');
    });
    await hook.stage(tx, fine, afterCommit);
    await assert.rejects(tx.exec(), /enqueue failed/);
    assert.equal(runs(), 1);
    assert.ok(await raw.rawTask(failing.record.id));
    assert.ok(await raw.rawOutbox(failing.outbox.taskId));
  });

  it('refuses to stage into a MULTI that has been executed', async function () {
    const tx = client.multi();
    await hook.stage(tx, stagedDefer(stores), async () => {});
    await tx.exec();
    await assert.rejects(
      hook.stage(tx, stagedDefer(stores), async () => {}),
      { code: 'INVALID_STATE' },
    );
  });

  it('works on a client with a keyPrefix (stored key names include it)', async function () {
    const prefixed = new Redis({ host: REDIS_HOST, port: REDIS_PORT, keyPrefix: 'kp:' });
    try {
      const prefixedStores = redisStores({ client: prefixed, prefix, sweepIntervalMs: 0 });
      const prefixedRaw = redisRawBackend(other, `kp:${prefix}`);
      const reference = `kp-ref-${randomUUID()}`;
      const staged = stagedDefer(prefixedStores, { reference });
      const { afterCommit, runs } = counter();
      const tx = prefixed.multi();
      await prefixedStores.transactions[0].stage(tx, staged, afterCommit);
      await tx.exec();
      assert.equal(runs(), 1);
      assert.ok(await prefixedRaw.rawTask(staged.record.id));
      assert.equal((await prefixedStores.state.findByReference(reference))?.id, staged.record.id);
      const lease = await prefixedStores.state.acquireLease(staged.record.id, { owner: 'w', now: Date.now(), leaseMs: 1000, executionCount: 1 });
      assert.equal(lease.kind, 'acquired');
      await prefixedStores.state.settle(staged.record.id, {
        owner: 'w',
        status: 'succeeded',
        now: Date.now(),
        attempt: { at: Date.now(), statusCode: 200, outcome: 'succeeded', durationMs: 1 },
        expiresAt: Date.now() + HOUR,
      });
      assert.equal(await prefixedRaw.rawTaskExpiry(staged.record.id), (await prefixedRaw.rawTask(staged.record.id))?.expiresAt);
      await prefixedStores.state.deleteTask(staged.record.id);
      assert.equal(await prefixedStores.state.findByReference(reference), undefined);
      await deleteKeys(other, `kp:${prefix}`);
    } finally {
      await prefixed.quit();
    }
  });
});
