/**
 * Issue 13, "runs once" under SIGKILL: a process killed after its task's last write but before the
 * record says `succeeded` has the task run again. That window is kept to one store round trip:
 * the outcome is decided on the record the run last wrote (its lease or heartbeat renewal), so the
 * first thing the store sees after the task returns is the settle's commit, not a read. Watched
 * with Redis MONITOR on real Redis.
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { redisStores } from '../../adapters/redis/index.js';
import type { DeferredTask } from '../../src/index.js';
import { eventually, startApp, type TestApp } from '../helpers/app.js';
import { deleteKeys, REDIS_HOST, REDIS_PORT, testPrefix } from '../redis/harness.js';

describe('reliability: the outcome is written one round trip after the task returns (issue 13)', function () {
  this.timeout(30_000);
  let client: Redis;
  let monitor: Redis | undefined;
  let served: TestApp | undefined;
  let prefix: string;

  beforeEach(() => {
    client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    prefix = testPrefix();
  });
  afterEach(async () => {
    monitor?.disconnect();
    monitor = undefined;
    await served?.close();
    served = undefined;
    await deleteKeys(client, prefix);
    client.disconnect();
  });

  for (const outcome of ['succeeds', 'fails'] as const) {
    it(`a task that ${outcome}: no read of its record between its last write and the commit of its outcome`, async () => {
      const taskClient = client.duplicate();
      let task!: DeferredTask<[]>;
      served = await startApp('express', { stores: redisStores({ client: client.duplicate(), prefix }), logger: false }, (deferred) => {
        task = deferred.task(`last-write-${outcome}`, async () => {
          await taskClient.set(`${prefix}:last-write`, '1');
          if (outcome === 'fails') throw new Error('fails after its write');
        });
      });
      const seen: string[][] = [];
      monitor = await client.monitor();
      monitor.on('monitor', (_time: string, args: string[]) => seen.push(args.map(String)));
      // Wait on the engine's settle event, not by polling getTask: a poll is itself a read of the
      // record and could land in the very window this test watches.
      const settledIds = new Set<string>();
      let wake = (): void => undefined;
      const stopListening = served.deferred.engine.onSettled((record) => {
        settledIds.add(record.id);
        wake();
      });
      const info = await task.with({ maxAttempts: 1 }).defer();
      await new Promise<void>((resolve) => {
        wake = () => {
          if (settledIds.has(info.id)) resolve();
        };
        wake();
      });
      stopListening();
      // MONITOR's stream lags the commands it reports: send a marker and wait until it shows, so
      // everything Redis ran before it (the commit included) is in `seen`.
      const marker = `${prefix}:monitor-caught-up`;
      await client.get(marker);
      await eventually(() => seen.some((args) => args[1] === marker), 'MONITOR to catch up');
      taskClient.disconnect();
      const write = seen.findIndex((args) => args[0]?.toLowerCase() === 'set' && args[1] === `${prefix}:last-write`);
      assert.ok(write >= 0, 'the task wrote');
      // The first command about this task after its write: the commit script, with the record's key.
      const next = seen.slice(write + 1).find((args) => args.some((arg) => arg.includes(info.id)));
      assert.ok(next, 'a command about the task followed');
      assert.match(next[0]!.toLowerCase(), /^eval/, `the next command about the task was ${next.slice(0, 3).join(' ')}, not the commit`);
      const record = await served.deferred.getTask(info.id);
      assert.equal(record?.status, outcome === 'succeeds' ? 'succeeded' : 'failed');
    });
  }
});
