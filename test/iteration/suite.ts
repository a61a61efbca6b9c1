/** deferIteration with finalize, end to end through the emulator and a real HTTP app. */
import assert from 'node:assert/strict';
import type { CloudTasksClient, protos } from '@google-cloud/tasks';
import { createEmulatorClient } from '../../src/emulator/index.js';
import { currentShardIndex, currentTask, type CreateDeferredOptions, type DeferredTask } from '../../src/index.js';
import { startApp, type TestApp } from '../helpers/app.js';

export interface IterationHarness {
  name: string;
  options(): Promise<CreateDeferredOptions>;
  /** A source holding these ids in this backend, or the plain list. */
  source(ids: string[]): Promise<unknown>;
  /** The same source restricted to ids whose number is in [from, to]. */
  filtered?(ids: string[], from: number, to: number): Promise<unknown>;
  cleanup?(): Promise<void>;
  /** Items of the big run; default 100,000 (Google's emulators get fewer: they are far slower). */
  bigItems?: number;
}

export function describeIteration(harness: IterationHarness): void {
  describe(`deferIteration (${harness.name})`, function () {
    this.timeout(120_000);
    let app: TestApp;
    let client: CloudTasksClient;
    const touched: Array<{ item: string; shard: number | undefined; extra: unknown[] }> = [];
    const finalized: unknown[][] = [];
    let failing: { item: string; times: number } | undefined;
    let delayMs = 0;
    let callback: DeferredTask<[string, ...unknown[]]>;
    let finalize: DeferredTask<unknown[]>;

    before(async () => {
      app = await startApp('express', await harness.options(), (deferred) => {
        callback = deferred.task('touch', async (item: string, ...extra: unknown[]) => {
          if (failing && failing.item === item && failing.times > 0) {
            failing.times -= 1;
            touched.push({ item, shard: currentShardIndex(), extra });
            throw new Error(`cannot touch ${item} yet`);
          }
          if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
          touched.push({ item, shard: currentShardIndex(), extra });
        });
        finalize = deferred.task('finish', (...args: unknown[]) => {
          assert.equal(currentTask()?.name, 'cloud-defer.iteration.finalize');
          finalized.push(args);
        });
      });
      client = createEmulatorClient(app.deferred.emulator!);
    });
    after(async () => {
      await client.close();
      await app.close();
      await harness.cleanup?.();
    });
    beforeEach(() => {
      touched.length = 0;
      finalized.length = 0;
      failing = undefined;
      delayMs = 0;
    });

    const ids = (n: number, prefix = 'item') => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}`);
    const counts = () => {
      const map = new Map<string, number>();
      for (const t of touched) map.set(t.item, (map.get(t.item) ?? 0) + 1);
      return map;
    };

    async function run(source: unknown, options: Parameters<TestApp['deferred']['deferIteration']>[3] = {}) {
      const info = await app.deferred.deferIteration(source as string[], callback, finalize, options);
      await app.deferred.drain({ timeoutMs: 100_000 });
      await info.wait({ timeoutMs: 10_000 });
      return info;
    }

    it("touches 25 items over 5 shards once each and finalizes once (djangae's case)", async () => {
      const items = ids(25);
      const info = await run(await harness.source(items), { shards: 5, deleteMarker: false });
      assert.deepEqual([...counts().keys()].sort(), items);
      assert.ok([...counts().values()].every((n) => n === 1));
      assert.equal(finalized.length, 1);
      assert.deepEqual(new Set(touched.map((t) => t.shard)), new Set([0, 1, 2, 3, 4]), 'currentShardIndex() inside callbacks');
      assert.equal(currentShardIndex(), undefined, 'undefined outside');
      const record = await app.deferred.getIteration(info.id);
      assert.equal(record?.status, 'succeeded');
      assert.equal(record?.shardCount, 5);
      assert.equal(
        record?.shards.reduce((sum, s) => sum + s.processed, 0),
        25,
      );
      assert.ok(record?.shards.every((s) => s.done));
    });

    it('deleteMarker (default) removes the iteration record after finalize', async () => {
      const info = await run(await harness.source(ids(5)), { shards: 2 });
      assert.equal(await app.deferred.getIteration(info.id), undefined);
      assert.equal(finalized.length, 1);
    });

    it('extra args reach callback and finalize', async () => {
      await run(await harness.source(ids(6)), { shards: 3, args: ['tenant-9', 42] });
      assert.ok(touched.every((t) => t.extra[0] === 'tenant-9' && t.extra[1] === 42));
      assert.deepEqual(finalized, [['tenant-9', 42]]);
    });

    if (harness.filtered) {
      it('a filtered source touches only its subset', async () => {
        const items = ids(40);
        await run(await harness.filtered!(items, 10, 19), { shards: 4 });
        assert.deepEqual([...counts().keys()].sort(), items.slice(10, 20));
        assert.equal(finalized.length, 1);
      });
    }

    it('a callback failing twice on one item: that item touched once more than its failures, the others once, finalize once', async () => {
      const items = ids(20);
      failing = { item: items[7]!, times: 2 };
      const info = await run(await harness.source(items), { shards: 2, retryCountdown: 1, deleteMarker: false });
      const c = counts();
      assert.equal(c.get(items[7]!), 3);
      for (const item of items) if (item !== items[7]) assert.equal(c.get(item), 1, item);
      assert.equal(finalized.length, 1);
      const record = await app.deferred.getIteration(info.id);
      assert.equal(
        record?.shards.reduce((sum, s) => sum + s.errors, 0),
        2,
      );
      assert.match(record?.shards.find((s) => s.errors > 0)?.lastError?.message ?? '', /cannot touch/);
    });

    it('a time budget running out mid-shard re-defers from the right item; items in ascending order per shard', async () => {
      const items = ids(12);
      delayMs = 25;
      await run(await harness.source(items), { shards: 2, dispatchDeadline: 15, bufferTime: 14.94 });
      const c = counts();
      assert.deepEqual([...c.keys()].sort(), items);
      assert.ok(
        [...c.values()].every((n) => n === 1),
        'no item skipped or repeated',
      );
      for (const shard of [0, 1]) {
        const order = touched.filter((t) => t.shard === shard).map((t) => t.item);
        assert.deepEqual(order, [...order].sort(), `shard ${shard} in ascending key order`);
      }
      const shardRuns = (await app.deferred.listTasks({ taskName: 'cloud-defer.iteration.shard', limit: 1000 })).records;
      assert.ok(shardRuns.length > 2, `the shards re-deferred themselves (${shardRuns.length} shard tasks)`);
      assert.equal(finalized.length, 1);
    });

    it('duplicated shard deliveries still give finalize exactly once', async () => {
      const queue = 'projects/local-project/locations/us-central1/queues/default';
      await client.pauseQueue({ name: queue });
      try {
        const info = await app.deferred.deferIteration((await harness.source(ids(10))) as string[], callback, finalize, { shards: 3 });
        // Let the start task run, then hold the shard tasks and deliver each of them three times.
        const start = (await client.listTasks({ parent: queue }))[0][0]!;
        await client.runTask({ name: start.name! });
        let shardTasks: protos.google.cloud.tasks.v2.ITask[] = [];
        for (let i = 0; i < 250 && shardTasks.length < 3; i += 1) {
          await new Promise((r) => setTimeout(r, 20));
          // The start task stays listed until its own run is recorded: leave it out.
          [shardTasks] = await client.listTasks({ parent: queue, responseView: 'FULL' });
          shardTasks = shardTasks.filter((t) => t.name !== start.name);
        }
        assert.equal(shardTasks.length, 3);
        for (const task of shardTasks) {
          for (let copy = 0; copy < 2; copy += 1) await client.createTask({ parent: queue, task: { httpRequest: task.httpRequest! } });
        }
        await client.resumeQueue({ name: queue });
        await app.deferred.drain({ timeoutMs: 60_000 });
        await info.wait();
        assert.equal(finalized.length, 1);
        assert.deepEqual([...counts().keys()].sort(), ids(10));
      } finally {
        await client.resumeQueue({ name: queue });
      }
    });

    const big = harness.bigItems ?? 100_000;
    it(`${big.toLocaleString('en')} items over 8 shards complete`, async () => {
      const items = ids(big, 'big');
      let seen = 0;
      const before = touched.length;
      await run(await harness.source(items), { shards: 8, pageSize: 1000 });
      seen = touched.length - before;
      assert.equal(seen, big);
      assert.equal(new Set(touched.map((t) => t.item)).size, big);
      assert.equal(finalized.length, 1);
    });
  });
}
