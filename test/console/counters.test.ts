/** The counters on real Redis and in memory: atomic increments from concurrent callers, windows, expiry set. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { durationQuantile, type TaskCounters } from '../../src/core/counters.js';
import { memoryCounters } from '../../adapters/memory/counters.js';
import { redisCounters } from '../../adapters/redis/index.js';
import { firestoreCounters } from '../../adapters/firestore/index.js';
import { datastoreCounters } from '../../adapters/datastore/index.js';
import { datastoreForTests, type DatastoreForTests } from '../emulators/datastore/harness.js';
import { firestoreForTests, type FirestoreForTests } from '../emulators/firestore/harness.js';

const REDIS_HOST = process.env.REDIS_HOST ?? '127.0.0.1';
const REDIS_PORT = Number(process.env.REDIS_PORT ?? 6379);

describe('task counters (memory, Redis, Firestore and Datastore emulators)', function () {
  this.timeout(60_000);
  let client: Redis;
  let fs: FirestoreForTests;
  let ds: DatastoreForTests;
  const prefix = `cd-test-counters-${randomUUID().slice(0, 8)}`;
  before(async () => {
    client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    fs = await firestoreForTests();
    ds = await datastoreForTests();
  });
  after(async () => {
    const keys = await client.keys(`${prefix}:*`);
    if (keys.length) await client.del(...keys);
    client.disconnect();
    await fs?.stop();
    await ds?.stop();
  });

  const kinds: Array<[string, () => TaskCounters]> = [
    ['memory', () => memoryCounters()],
    ['redis', () => redisCounters({ client, prefix: `${prefix}-${randomUUID().slice(0, 6)}` })],
    [
      'datastore',
      () =>
        datastoreCounters({
          datastore: ds.datastore,
          kindPrefix: `Cdc${randomUUID().slice(0, 6).replace(/-/g, '')}`,
          ...(ds.namespace ? { namespace: ds.namespace } : {}),
        }),
    ],
    ['firestore', () => firestoreCounters({ firestore: fs.firestore, collectionPrefix: `${fs.prefix}cdc${randomUUID().slice(0, 6)}` })],
  ];
  for (const [kind, make] of kinds) {
    it(`${kind}: concurrent records land in their minute and hour buckets; a window reads only its buckets`, async () => {
      const counters = make();
      const minute = Math.floor(Date.now() / 60_000) * 60_000;
      const samples = [
        ...Array.from({ length: 50 }, (_, i) => ({ queue: 'q', outcome: 'succeeded' as const, durationMs: i < 45 ? 8 : 900, at: minute + 10 })),
        ...Array.from({ length: 7 }, () => ({ queue: 'q', outcome: 'failed' as const, durationMs: 40, at: minute + 20 })),
        { queue: 'q', outcome: 'retrying' as const, durationMs: 3, at: minute - 60_000 },
        { queue: 'other', outcome: 'succeeded' as const, durationMs: 3, at: minute },
      ];
      await Promise.all(samples.map((s) => counters.record(s)));
      const now = await counters.read('q', 'minute', minute, minute + 60_000);
      assert.equal(now.length, 1);
      assert.equal(now[0]!.succeeded, 50);
      assert.equal(now[0]!.failed, 7);
      assert.equal(now[0]!.retrying, 0);
      assert.equal(durationQuantile(now[0]!.durations, 0.5), 10);
      assert.equal(durationQuantile(now[0]!.durations, 0.95), 1000);
      const both = await counters.read('q', 'minute', minute - 60_000, minute + 60_000);
      assert.deepEqual(
        both.map((b) => b.start),
        [minute - 60_000, minute],
      );
      const hour = Math.floor(minute / 3_600_000) * 3_600_000;
      const hours = await counters.read('q', 'hour', hour - 3_600_000, hour + 3_600_000);
      const total = hours.reduce((n, b) => n + b.succeeded + b.failed + b.retrying, 0);
      assert.equal(total, 58);
      assert.deepEqual(await counters.read('none', 'minute', minute, minute + 60_000), []);
    });
  }

  it('datastore: expired counter entities are swept (Datastore has no expiry of its own)', async () => {
    const counters = datastoreCounters({
      datastore: ds.datastore,
      kindPrefix: `Cdx${randomUUID().slice(0, 6).replace(/-/g, '')}`,
      sweepEveryMs: 0,
      ...(ds.namespace ? { namespace: ds.namespace } : {}),
    });
    const old = Date.now() - 9 * 86_400_000; // both buckets past their retention
    await counters.record({ queue: 'q', outcome: 'succeeded', durationMs: 1, at: old });
    await counters.record({ queue: 'q', outcome: 'succeeded', durationMs: 1, at: Date.now() });
    assert.equal((await counters.read('q', 'minute', old - 60_000, old + 60_000)).length, 1);
    assert.equal(await counters.sweepExpired(Date.now()), 2, 'the old minute and hour entities');
    assert.deepEqual(await counters.read('q', 'minute', old - 60_000, old + 60_000), []);
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    assert.equal((await counters.read('q', 'minute', minute, minute + 60_000))[0]?.succeeded, 1, 'the current bucket stays');
  });

  it('redis: buckets expire by themselves (minute buckets after about a day, hour buckets after about a week)', async () => {
    const p = `${prefix}-ttl`;
    const counters = redisCounters({ client, prefix: p });
    await counters.record({ queue: 'q', outcome: 'succeeded', durationMs: 1, at: Date.now() });
    const keys = await client.keys(`${p}:*`);
    assert.equal(keys.length, 2);
    for (const key of keys) {
      const ttl = await client.pttl(key);
      const day = 86_400_000;
      if (key.includes(':minute:')) assert.ok(ttl > day && ttl <= 25 * 3_600_000, `minute ttl ${ttl}`);
      else assert.ok(ttl > 7 * day && ttl <= 8 * day, `hour ttl ${ttl}`);
    }
  });
});
