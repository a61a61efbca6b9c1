import { Redis } from 'ioredis';
import { openRedisHarness, REDIS_HOST, REDIS_PORT } from '../redis/harness.js';
import { describeStoreContract } from './suite.js';

describeStoreContract('redis', () => openRedisHarness({ connect: () => new Redis({ host: REDIS_HOST, port: REDIS_PORT }) }));

// ioredis's auto-pipelining sends the commands of one tick in one write (BENCHMARKS.md: a quarter
// less Redis CPU per task under load); the stores must keep every guarantee with it on.
describeStoreContract('redis, enableAutoPipelining', () =>
  openRedisHarness({ connect: () => new Redis({ host: REDIS_HOST, port: REDIS_PORT, enableAutoPipelining: true }) }),
);
