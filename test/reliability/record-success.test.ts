/**
 * Issue 13, "runs once" for a task's own writes: currentTask().recordSuccessIn(tx) commits the
 * run's `succeeded` record in the task's transaction, on every shipped backend (memory, Redis,
 * Datastore and Firestore on our emulators and on Google's when gcloud is present). Once that transaction has committed, whatever
 * happens to the run (it throws, its process dies: see chaos.test.ts for SIGKILL) the record
 * says succeeded and the task is not run again; a transaction that rolls back records nothing.
 */
import assert from 'node:assert/strict';
import type { Datastore } from '@google-cloud/datastore';
import type { Firestore, Transaction as FirestoreTransaction } from '@google-cloud/firestore';
import type { Transaction as DatastoreTransaction } from '@google-cloud/datastore';
import Redis, { type ChainableCommander } from 'ioredis';
import { memoryStores } from '../../adapters/memory/index.js';
import { redisStores } from '../../adapters/redis/index.js';
import { currentTask, type DeferredTask, type Stores, type TaskRecord } from '../../src/index.js';
import { datastoreBackends, openDatastoreHarness } from '../datastore/harness.js';
import { firestoreBackends, openFirestoreHarness } from '../firestore/harness.js';
import { eventually, startApp, type TestApp } from '../helpers/app.js';
import { deleteKeys, REDIS_HOST, REDIS_PORT, testPrefix } from '../redis/harness.js';

/** One backend: its stores, a business write made in one of its transactions, and a read of it. */
interface Backend {
  stores: Stores;
  /** Runs `work` in a transaction of the stores: the business write `key`, then `more`. */
  inTransaction(key: string, more: (tx: unknown) => Promise<void>): Promise<void>;
  written(key: string): Promise<boolean>;
  cleanup(): Promise<void>;
}

const backends: Array<{ name: string; open: () => Promise<Backend> }> = [
  {
    name: 'memory',
    open: async () => {
      const stores = memoryStores();
      const written = new Set<string>();
      return {
        stores,
        // The memory stores hold no user data: the write is kept beside them, applied once committed.
        inTransaction: async (key, more) => {
          await stores.transaction((tx) => more(tx));
          written.add(key);
        },
        written: async (key) => written.has(key),
        cleanup: async () => {},
      };
    },
  },
  {
    name: 'redis',
    open: async () => {
      const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
      const prefix = testPrefix();
      const stores = redisStores({ client, prefix });
      return {
        stores,
        inTransaction: (key, more) =>
          stores.transaction(async (multi: ChainableCommander) => {
            multi.set(`${prefix}:business:${key}`, '1');
            await more(multi);
          }),
        written: async (key) => (await client.get(`${prefix}:business:${key}`)) === '1',
        cleanup: async () => {
          await deleteKeys(client, prefix);
          client.disconnect();
        },
      };
    },
  },
  ...datastoreBackends().map(({ label, backend }) => ({
    name: `datastore${label}`,
    open: async (): Promise<Backend> => {
      const h = await openDatastoreHarness({}, backend);
      const datastore: Datastore = h.datastore;
      const keyOf = (key: string) => datastore.key({ namespace: h.stores.namespace, path: ['Business', key] });
      return {
        stores: h.stores,
        inTransaction: (key, more) =>
          h.stores.transaction(async (tx: DatastoreTransaction) => {
            await more(tx);
            tx.save({ key: keyOf(key), data: { done: true } });
          }),
        written: async (key) => (await datastore.get(keyOf(key)))[0] !== undefined,
        cleanup: () => h.cleanup(),
      };
    },
  })),
  ...firestoreBackends().map(({ label, backend }) => ({
    name: `firestore${label}`,
    open: async (): Promise<Backend> => {
      const h = await openFirestoreHarness({}, backend ? { backend } : {});
      const firestore: Firestore = h.firestore;
      const doc = (key: string) => firestore.doc(`${h.prefix}Business/${key}`);
      return {
        stores: h.stores,
        inTransaction: (key, more) =>
          h.stores.transaction(async (tx: FirestoreTransaction) => {
            // It reads the record: Firestore wants reads before the transaction's writes.
            await more(tx);
            tx.set(doc(key), { done: true });
          }),
        written: async (key) => (await doc(key).get()).exists,
        cleanup: () => h.cleanup(),
      };
    },
  })),
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const { name, open } of backends) {
  const slug = name.replace(/[^A-Za-z0-9_-]+/g, '-');
  describe(`reliability: currentTask().recordSuccessIn(tx) on ${name} (issue 13)`, function () {
    this.timeout(30_000);
    let backend: Backend;
    let served: TestApp | undefined;
    const runs = new Map<string, number>();
    const seenAfterCommit = new Map<string, TaskRecord['status'] | undefined>();
    let commitThenThrow!: DeferredTask<[string]>;
    let rollBackOnce!: DeferredTask<[string]>;
    let wrongTransaction!: DeferredTask<[]>;
    let losesItsLease!: DeferredTask<[string]>;
    const refusals = new Map<string, unknown>();

    before(async () => {
      backend = await open();
      served = await startApp('express', { stores: backend.stores, logger: false }, (deferred) => {
        commitThenThrow = deferred.task(`commit-then-throw-${slug}`, async (key: string) => {
          runs.set(key, (runs.get(key) ?? 0) + 1);
          const task = currentTask()!;
          await backend.inTransaction(key, (tx) => task.recordSuccessIn(tx));
          seenAfterCommit.set(key, (await deferred.getTask(task.id))?.status);
          // As if the process died here, after the commit and before the run's own settle.
          throw new Error('lost after the commit');
        });
        rollBackOnce = deferred.task(`roll-back-once-${slug}`, async (key: string) => {
          const task = currentTask()!;
          if (task.attempt > 0) return;
          await backend.inTransaction(`${key}-attempt-0`, async (tx) => {
            await task.recordSuccessIn(tx);
            throw new Error('the transaction rolls back');
          });
        });
        losesItsLease = deferred.task(`loses-its-lease-${slug}`, async (key: string) => {
          const task = currentTask()!;
          if (task.attempt > 0) return;
          // Another party ends this run's hold on the record (as a shutdown's release does).
          await backend.stores.state.transition(task.id, ['running'], 'retrying', {}, Date.now());
          try {
            await backend.inTransaction(key, (tx) => task.recordSuccessIn(tx));
          } catch (error) {
            refusals.set(key, error);
            throw error;
          }
        });
        wrongTransaction = deferred.task(`wrong-transaction-${slug}`, async () => {
          await currentTask()!.recordSuccessIn({ not: 'a transaction' });
        });
      });
    });
    after(async () => {
      await served?.close();
      await backend.cleanup();
    });

    const finished = (id: string) =>
      eventually(async () => {
        const record = await served!.deferred.getTask(id);
        return record && ['succeeded', 'failed'].includes(record.status) ? record : undefined;
      }, `task ${id} to finish`);

    it('the write and the succeeded record commit together: the record says succeeded before the task returns, and a failure after the commit is not run again', async () => {
      const key = `k-${slug}-commit`;
      const info = await commitThenThrow.defer(key);
      const record = await finished(info.id);
      await sleep(1_000); // time for the queue's retry of the 500, which must not run it again
      const final = await served!.deferred.getTask(info.id);
      assert.equal(seenAfterCommit.get(key), 'succeeded', 'succeeded as soon as the transaction committed');
      assert.equal(record.status, 'succeeded');
      assert.equal(final?.status, 'succeeded');
      assert.equal(runs.get(key), 1, 'run once');
      assert.equal(await backend.written(key), true, "the task's own write committed");
      assert.deepEqual(
        final!.history.map((attempt) => attempt.outcome),
        ['succeeded'],
        'one attempt, succeeded',
      );
    });

    it('a transaction that rolls back records nothing: the failure is recorded and the next attempt runs', async () => {
      const key = `k-${slug}-rollback`;
      const info = await rollBackOnce.defer(key);
      const record = await finished(info.id);
      assert.equal(record.status, 'succeeded');
      assert.deepEqual(
        record.history.map((attempt) => attempt.outcome),
        ['retrying', 'succeeded'],
      );
      assert.match(record.history[0]!.error?.message ?? '', /rolls back/);
      assert.equal(await backend.written(`${key}-attempt-0`), false, 'the rolled-back write is not there');
    });

    it('a run that no longer holds its record fails its transaction (INVALID_STATE): its write does not commit, the next attempt runs', async () => {
      const key = `k-${slug}-lease`;
      const info = await losesItsLease.defer(key);
      const record = await finished(info.id);
      const refusal = refusals.get(key) as { code?: string } | undefined;
      assert.equal(refusal?.code, 'INVALID_STATE', `the transaction was refused (${String(refusal)})`);
      assert.equal(await backend.written(key), false, 'the write of the run that lost its hold is not there');
      assert.equal(record.status, 'succeeded', 'the next attempt ran');
    });

    it('a value that is no transaction of these stores is refused with INVALID_OPTION, and says what to pass', async () => {
      const info = await wrongTransaction.with({ maxAttempts: 1 }).defer();
      const record = await finished(info.id);
      assert.equal(record.status, 'failed');
      assert.equal(record.lastError?.code, 'INVALID_OPTION');
      assert.match(record.lastError?.message ?? '', /stores\.transaction\(\)/);
    });
  });
}
