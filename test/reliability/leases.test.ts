/**
 * Issue 13.1: leases that follow the run. A run 3x longer than its short lease keeps it by its
 * heartbeat: duplicate deliveries every second, from this process and from a second instance on
 * the same Redis, never start a second run and do not use up the queue's attempts (answered 200).
 * A run whose lease was taken over gets its signal fired. Real Redis, the emulator in its own process.
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { redisStores } from '../../adapters/redis/index.js';
import { createCodec, encodeEnvelope } from '../../src/core/codec.js';
import { responseFor } from '../../src/http/handler.js';
import { createDeferred, currentTask, type Deferred, type DeferredTask } from '../../src/index.js';
import { deleteKeys, REDIS_HOST, REDIS_PORT, testPrefix } from '../redis/harness.js';
import { freePort, startEmulatorProcess, type EmulatorProcess } from './helpers/processes.js';

describe('reliability: leases that follow the run (issue 13.1, 13.3)', function () {
  this.timeout(60_000);
  let emulator: EmulatorProcess;
  let client: Redis;
  let prefix: string;
  const made: Deferred[] = [];

  beforeEach(async () => {
    emulator = await startEmulatorProcess(await freePort());
    emulator.useFromEnv();
    client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    prefix = testPrefix();
  });
  afterEach(async () => {
    for (const d of made.splice(0)) await d.close({ graceMs: 0 });
    await emulator.kill();
    delete process.env.CLOUD_TASKS_EMULATOR_HOST;
    delete process.env.CLOUD_TASKS_EMULATOR_JWKS_URI;
    await deleteKeys(client, prefix);
    client.disconnect();
  });

  function instance(
    heartbeatLeaseMs: number,
    run: (signal: AbortSignal) => Promise<void>,
  ): { engine: Deferred['engine']; deferred: Deferred; task: DeferredTask<[]> } {
    const deferred = createDeferred({
      stores: redisStores({ client: client.duplicate(), prefix }),
      queues: [{ name: 'default', retryConfig: { maxAttempts: 2 } }],
      leaseMs: 20_000,
      heartbeatLeaseMs,
      logger: false,
      target: { url: 'http://127.0.0.1:9/unused' },
    });
    const task = deferred.task('long-run', async () => run(currentTask()!.signal));
    made.push(deferred);
    return { engine: deferred.engine, deferred, task };
  }

  function deliveryOf(id: string, retryCount: number) {
    const body = encodeEnvelope({ task: 'long-run', id, argsText: Buffer.from(createCodec().encodeArgs([])).toString('utf8') });
    return { body, targetKind: 'http' as const, queueName: 'default', retryCount, executionCount: retryCount, verified: true };
  }

  it('a run 3x longer than its lease, a duplicate every second from here and from another instance: one run at any moment, all answered 200', async () => {
    const leaseMs = 1_000;
    let aborted = false;
    const body = async (signal: AbortSignal): Promise<void> => {
      const running = await client.incr(`${prefix}:t:running`);
      await client.incr(`${prefix}:t:runs`);
      await client.set(`${prefix}:t:max`, String(Math.max(running, Number((await client.get(`${prefix}:t:max`)) ?? 0))));
      signal.addEventListener('abort', () => {
        aborted = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 3 * leaseMs + 300));
      await client.decr(`${prefix}:t:running`);
    };
    const a = instance(leaseMs, body);
    const b = instance(leaseMs, body);
    // Scheduled an hour ahead, so only the deliveries below reach it.
    const info = await a.task.with({ countdown: 3600 }).defer();
    const first = a.engine.run(deliveryOf(info.id, 0));
    const duplicates = [];
    for (let i = 1; i <= 3; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // Odd: this process (its running set); even: another instance, which only the store's lease stops.
      duplicates.push(await (i % 2 === 1 ? b : a).engine.run(deliveryOf(info.id, i)));
    }
    assert.equal((await first).kind, 'succeeded');
    assert.deepEqual(
      duplicates.map((d) => [d.kind, responseFor(d, 'http').status]),
      duplicates.map(() => ['duplicate', 200]),
    );
    assert.equal(await client.get(`${prefix}:t:runs`), '1');
    assert.equal(await client.get(`${prefix}:t:max`), '1');
    assert.equal(aborted, false, 'a renewed lease does not fire the signal');
    const record = await a.deferred.getTask(info.id);
    assert.equal(record?.status, 'succeeded');
    assert.equal(record?.attempts, 1, 'the duplicates used no attempt (queue maxAttempts 2)');
  });

  it('a run whose lease is taken over gets its signal fired by the next heartbeat', async () => {
    const leaseMs = 600;
    let abortReason: unknown;
    let abortedAt = 0;
    const a = instance(leaseMs, async (signal) => {
      await new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => {
          abortReason = signal.reason;
          abortedAt = Date.now();
          resolve();
        });
        setTimeout(resolve, 10_000);
      });
    });
    const b = instance(leaseMs, async () => {});
    const info = await a.task.with({ countdown: 3600 }).defer();
    const first = a.engine.run(deliveryOf(info.id, 0));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const held = await a.deferred.getTask(info.id);
    assert.equal(held?.status, 'running');
    // Another writer takes the task: the lease is given back, then a delivery on instance b runs it.
    await a.deferred.stores.state.releaseLease!(info.id, { owner: held!.leaseOwner!, now: Date.now() });
    const takenAt = Date.now();
    assert.equal((await b.engine.run(deliveryOf(info.id, 1))).kind, 'succeeded');
    await first;
    assert.ok(abortedAt > 0, 'the signal fired');
    assert.ok(abortedAt - takenAt < 4 * leaseMs, `within a heartbeat or two (${abortedAt - takenAt} ms)`);
    assert.match(String((abortReason as Error).message), /taken over/);
    assert.equal((await a.deferred.getTask(info.id))?.status, 'succeeded');
  });
});
