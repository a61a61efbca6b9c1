/** deferIteration on Redis: Redis state, and Redis sorted-set and key-pattern sources. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { keyPattern, redisSources, redisStores, sortedSet } from '../../adapters/redis/index.js';
import { describeIteration } from './suite.js';
import { currentShardIndex, type DeferredTask } from '../../src/index.js';
import { startApp } from '../helpers/app.js';

const prefix = `cd-it-${randomUUID().slice(0, 8)}`;
let client: Redis | undefined;
const redis = () => (client ??= new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: false }));

async function cleanup(): Promise<void> {
  if (!client) return;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length) await client.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

async function zsetOf(ids: string[]): Promise<string> {
  const key = `${prefix}:src:${randomUUID().slice(0, 8)}`;
  for (let i = 0; i < ids.length; i += 5000) {
    const args: Array<number | string> = [];
    ids.slice(i, i + 5000).forEach((id, j) => args.push(i + j, id));
    await redis().zadd(key, ...args);
  }
  return key;
}

describeIteration({
  name: 'Redis sorted set source, Redis stores',
  options: async () => ({ stores: redisStores({ client: redis(), prefix }), sources: redisSources(redis()) }),
  source: async (ids) => sortedSet(await zsetOf(ids)),
  filtered: async (ids, from, to) => sortedSet(await zsetOf(ids), { min: from, max: to }),
  cleanup: async () => {
    await cleanup();
    await client?.quit();
    client = undefined;
  },
});

describe('deferIteration over a Redis key pattern', () => {
  it('touches every key matching the pattern once, in key order per shard', async () => {
    const c = new Redis({ host: '127.0.0.1', port: 6379 });
    const p = `cd-kp-${randomUUID().slice(0, 8)}`;
    const seen: Array<{ key: string; shard: number | undefined }> = [];
    let finalized = 0;
    for (let i = 0; i < 30; i += 1) await c.set(`${p}:user:${String(i).padStart(3, '0')}`, 'x');
    await c.set(`${p}:other:1`, 'x');
    let visit!: DeferredTask<[string]>;
    let done!: DeferredTask<[]>;
    const app = await startApp('express', { stores: redisStores({ client: c, prefix: p }), sources: redisSources(c) }, (d) => {
      visit = d.task('visit', (key: string) => {
        seen.push({ key, shard: currentShardIndex() });
      });
      done = d.task('done', () => {
        finalized += 1;
      });
    });
    try {
      const info = await app.deferred.deferIteration<string>(keyPattern(`${p}:user:*`), visit, done, { shards: 3 });
      await app.deferred.drain({ timeoutMs: 30_000 });
      await info.wait();
      assert.equal(seen.length, 30);
      assert.equal(new Set(seen.map((s) => s.key)).size, 30);
      assert.ok(seen.every((s) => s.key.includes(':user:')));
      for (const shard of [0, 1, 2]) {
        const keys = seen.filter((s) => s.shard === shard).map((s) => s.key);
        assert.deepEqual(keys, [...keys].sort());
      }
      assert.equal(finalized, 1);
    } finally {
      await app.close();
      const keys = await c.keys(`${p}*`);
      if (keys.length) await c.del(...keys);
      await c.quit();
    }
  });
});
