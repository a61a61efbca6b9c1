/** Redis-specific behaviour of cloud-defer/redis beyond the store contract. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { redisStores, type RedisStores } from '../../adapters/redis/index.js';
import { CloudDeferError } from '../../src/core/errors.js';
import type { TaskRecord } from '../../src/core/records.js';
import { deleteKeys, REDIS_HOST, REDIS_PORT, testPrefix, whenReady } from './harness.js';
import { rawTaskKey } from './raw.js';
import { sampleRecord } from '../helpers/records.js';

function record(stores: RedisStores, fields: Partial<TaskRecord> = {}): TaskRecord {
  return sampleRecord('adapter.task', fields, stores);
}

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('cloud-defer/redis adapter', function () {
  let client: Redis;
  let raw: Redis;
  let prefix: string;
  let stores: RedisStores;

  before(async function () {
    prefix = testPrefix();
    client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    raw = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    await Promise.all([whenReady(client), whenReady(raw)]);
    stores = redisStores({ client, prefix, sweepIntervalMs: 0 });
  });

  after(async function () {
    await stores.close();
    await deleteKeys(raw, prefix);
    await Promise.all([client.quit(), raw.quit()]);
  });

  it('does not load ioredis itself', async function () {
    const entry = path.resolve(__dirname, '../../adapters/redis/index.js');
    const script = `require(${JSON.stringify(entry)}); console.log(Object.keys(require.cache).filter((f) => f.includes('node_modules/ioredis')).length)`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script]);
    assert.equal(stdout.trim(), '0');
  });

  it('registers its one commit script as a cloudDefer* command on the client, nothing else', function () {
    const commands = client as unknown as Record<string, unknown>;
    assert.equal(typeof commands.cloudDeferCommit, 'function');
    for (const gone of ['CreateTask', 'AcquireLease', 'Settle', 'Transition']) assert.equal(commands[`cloudDefer${gone}`], undefined, gone);
    assert.ok(!client.options.keyPrefix, 'no keyPrefix set on the client');
  });

  it('makes task ids "<tag>_<random>" that are valid Cloud Tasks ids and share their reference\'s tag', function () {
    const a = stores.state.newTaskId('invoice-7');
    const b = stores.state.newTaskId('invoice-7');
    const c = stores.state.newTaskId(undefined);
    for (const id of [a, b, c]) assert.match(id, /^[0-9A-Za-z]{1,3}_[A-Za-z0-9_-]{20}$/);
    assert.notEqual(a, b);
    assert.equal(a.split('_')[0], b.split('_')[0]);
  });

  it('refuses a key prefix with braces', function () {
    assert.throws(
      () => redisStores({ client, prefix: 'a{b}' }),
      (error: unknown) => error instanceof CloudDeferError && error.code === 'INVALID_OPTION',
    );
  });

  it('accepts ids it did not make on a single node, with a reference in another slot', async function () {
    const reference = `foreign-${randomUUID()}`;
    const foreign = record(stores, { id: randomUUID(), reference });
    assert.deepEqual(await stores.state.createTask(foreign, Date.now()), { created: true });
    const second = await stores.state.createTask(record(stores, { id: randomUUID(), reference }), Date.now());
    assert.equal(!second.created && second.existing.id, foreign.id);
    assert.equal((await stores.state.findByReference(reference))?.id, foreign.id);
  });

  it('a listing skips index entries whose record is gone and removes them', async function () {
    const queue = `stale-${randomUUID()}`;
    const kept = record(stores, { queue });
    await stores.state.createTask(kept, kept.createdAt);
    const ghost = `${String(kept.createdAt + 5).padStart(15, '0')}:ghost_${randomUUID()}`;
    await Promise.all([raw.zadd(`${prefix}:{idx}:queue:${queue}`, 0, ghost), raw.zadd(`${prefix}:{idx}:status:queued`, 0, ghost)]);
    const page = await stores.state.listTasks({ queue });
    assert.deepEqual(
      page.records.map((r) => r.id),
      [kept.id],
    );
    assert.equal(await raw.zscore(`${prefix}:{idx}:queue:${queue}`, ghost), null, 'pruned from the index it read');
  });

  it('a listing moves an entry found in the wrong status index to the right one', async function () {
    const queue = `misplaced-${randomUUID()}`;
    const task = record(stores, { queue });
    await stores.state.createTask(task, task.createdAt);
    const member = `${String(task.createdAt).padStart(15, '0')}:${task.id}`;
    // As a Cluster writer that died between its script and its index writes would leave it.
    await raw.zrem(`${prefix}:{idx}:status:queued`, member);
    await raw.zadd(`${prefix}:{idx}:status:running`, 0, member);
    assert.deepEqual((await stores.state.listTasks({ status: 'running', queue })).records, []);
    assert.equal(await raw.zscore(`${prefix}:{idx}:status:running`, member), null);
    assert.equal(await raw.zscore(`${prefix}:{idx}:status:queued`, member), '0');
  });

  it('sweepExpired removes the index entries of expired records', async function () {
    const queue = `sweep-${randomUUID()}`;
    const reference = `sweep-ref-${randomUUID()}`;
    const short = record(stores, { queue, reference, iterationId: `it-${randomUUID()}`, expiresAt: Date.now() + 100 });
    await stores.state.createTask(short, short.createdAt);
    const member = `${String(short.createdAt).padStart(15, '0')}:${short.id}`;
    const indexKeys = [
      `${prefix}:{idx}:all`,
      `${prefix}:{idx}:status:queued`,
      `${prefix}:{idx}:queue:${queue}`,
      `${prefix}:{idx}:task:adapter.task`,
      `${prefix}:{idx}:ref:${reference}`,
      `${prefix}:{idx}:iteration:${short.iterationId}`,
    ];
    for (const key of indexKeys) assert.equal(await raw.zscore(key, member), '0', key);
    for (let tries = 0; tries < 400 && (await raw.exists(rawTaskKey(prefix, short.id))); tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.ok((await stores.sweepExpired()) >= 1);
    for (const key of indexKeys) assert.equal(await raw.zscore(key, member), null, key);
    const expiry = await raw.zrange(`${prefix}:{idx}:expiry`, '0', '-1');
    assert.ok(!expiry.some((entry) => entry.includes(short.id)));
  });

  it('a sweep leaves records whose retention was extended', async function () {
    const task = record(stores);
    await stores.state.createTask(task, task.createdAt);
    assert.equal(await stores.sweepExpired(), 0);
    // Pretend the expiry index missed an extension: the sweep must re-read the real deadline.
    const entry = (await raw.zrange(`${prefix}:{idx}:expiry`, '0', '-1')).find((e) => e.includes(task.id))!;
    await raw.zadd(`${prefix}:{idx}:expiry`, 1, entry);
    assert.equal(await stores.sweepExpired(), 0);
    assert.equal(Number(await raw.zscore(`${prefix}:{idx}:expiry`, entry)), task.expiresAt);
    assert.ok(await stores.state.getTask(task.id));
  });

  it('turns an unreachable server into STORE_UNAVAILABLE saying where and what to check', async function () {
    const port = await unusedPort();
    const down = new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
    try {
      const downStores = redisStores({ client: down, prefix });
      await assert.rejects(downStores.state.getTask('x'), (error: unknown) => {
        assert.ok(error instanceof CloudDeferError);
        assert.equal(error.code, 'STORE_UNAVAILABLE');
        assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
        assert.match(error.message, /Check that the server is running/);
        return true;
      });
      await assert.rejects(downStores.payloads.put('x', new Uint8Array(1), 1000), { code: 'STORE_UNAVAILABLE' });
    } finally {
      down.disconnect();
    }
  });

  it('passes an error reply of a reachable server through unchanged', async function () {
    const id = stores.state.newTaskId(undefined);
    await raw.set(rawTaskKey(prefix, id), 'not a hash');
    await assert.rejects(stores.state.getTask(id), (error: unknown) => error instanceof Error && /WRONGTYPE/.test(error.message));
  });
});
