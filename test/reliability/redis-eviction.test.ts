/** Issue 13.8: the Redis stores warn at start-up when the server's policy could evict their records. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import Redis from 'ioredis';
import { redisStores } from '../../adapters/redis/index.js';
import { eventually } from '../helpers/app.js';
import { freePort } from './helpers/processes.js';

describe('reliability: Redis eviction policy (issue 13.8)', function () {
  this.timeout(30_000);

  it('warns (process warning CLOUD_DEFER_REDIS_EVICTION) under volatile-lru, and stays quiet under noeviction', async () => {
    const port = await freePort();
    const server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'volatile-lru'],
      { stdio: 'ignore' },
    );
    const client = new Redis({ host: '127.0.0.1', port, retryStrategy: () => 50 });
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      if ((w as { code?: string }).code === 'CLOUD_DEFER_REDIS_EVICTION') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      await eventually(async () => (await client.ping().catch(() => '')) === 'PONG', 'redis-server to start');
      const stores = redisStores({ client, prefix: 'evict-test' });
      assert.equal(await stores.evictionPolicy, 'volatile-lru');
      await eventually(() => warnings.length === 1, 'the eviction warning');
      assert.match(warnings[0]!.message, /noeviction/);

      await client.config('SET', 'maxmemory-policy', 'noeviction');
      const quiet = redisStores({ client, prefix: 'evict-test-2' });
      assert.equal(await quiet.evictionPolicy, 'noeviction');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(warnings.length, 1, 'no second warning under noeviction');
    } finally {
      process.off('warning', onWarning);
      client.disconnect();
      server.kill('SIGKILL');
      await once(server, 'exit');
    }
  });
});
