import { Redis } from 'ioredis';
import { openRedisHarness, REDIS_HOST, REDIS_PORT } from '../redis/harness.js';
import { describeStoreContract } from './suite.js';

describeStoreContract('redis', () => openRedisHarness({ connect: () => new Redis({ host: REDIS_HOST, port: REDIS_PORT }) }));
