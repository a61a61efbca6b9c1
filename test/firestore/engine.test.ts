/**
 * The engine on Firestore stores, end to end (embedded Cloud Tasks emulator -> Express): status
 * API, large payloads, transactional defer inside firestore.runTransaction (also when contention
 * makes the client run the function again), and the outbox sweeper after a cut enqueue.
 */
import assert from 'node:assert/strict';
import type { Transaction } from '@google-cloud/firestore';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { firestoreStores, type FirestoreStores } from '../../adapters/firestore/index.js';
import { createEmulatorClient, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { CloudTasksTransport } from '../../src/queue/cloud-tasks.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { firestoreForTests, type FirestoreForTests } from '../emulators/firestore/harness.js';
import { firestoreBackends, uniquePrefix } from './harness.js';
import { cuttingTransport } from '../helpers/transport.js';

const HELD = 'projects/local-project/locations/us-central1/queues/held';

/** Poll until `check` holds; the bound only ends a failing test, it measures nothing. */
async function eventually(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 20))) if (await check()) return;
  assert.fail(`still not true after ${ms} ms: ${what}`);
}

for (const { label, backend } of firestoreBackends()) {
  describe(`engine on Firestore stores${label}`, function () {
    this.timeout(60_000);
    let env: FirestoreForTests;
    let stores: FirestoreStores;
    let app: TestApp;
    let tasks: CloudTasksClient;
    const runs: unknown[][] = [];

    before(async function () {
      env = await firestoreForTests(backend ? { backend } : {});
      stores = firestoreStores({ firestore: env.firestore, collectionPrefix: uniquePrefix(env) });
      app = await startApp('express', { stores, queues: [{ name: 'held' }] }, (d) => {
        d.task('count', (...args: unknown[]) => void runs.push(args));
      });
      tasks = createEmulatorClient(app.deferred.emulator!);
    });
    after(async function () {
      await tasks?.close();
      await app?.close();
      await stores?.close();
      if (env?.external) await env.clear();
      await env?.stop();
    });
    beforeEach(() => {
      runs.length = 0;
    });

    const held = async (): Promise<string[]> => (await tasks.listTasks({ parent: HELD }))[0].map((task) => task.name!);

    it('runs a task and records it in Firestore; getTask, findTask, listTasks and wait see it', async function () {
      const info = await app.deferred.defer('count', [1], { reference: 'order-1' });
      const record = await info.wait({ timeoutMs: 10_000 });
      assert.equal(record.status, 'succeeded');
      assert.deepEqual(runs, [[1]]);
      assert.equal((await app.deferred.findTask({ reference: 'order-1' }))?.id, info.id);
      const page = await app.deferred.listTasks({ status: 'succeeded', taskName: 'count' });
      assert.ok(page.records.some((r) => r.id === info.id));
      assert.ok((await env.firestore.collection(stores.collections.tasks).doc(info.id).get()).exists, 'the document in Firestore');
    });

    it('a 3 MB argument travels chunked through the payload store and is deleted after the run', async function () {
      const big = 'x'.repeat(3_000_000);
      const info = await app.deferred.defer('count', [big]);
      assert.equal((await info.wait({ timeoutMs: 10_000 })).status, 'succeeded');
      assert.equal((runs[0]![0] as string).length, big.length);
      // The payload is deleted after the record settles (best effort), so it may outlive wait() briefly.
      await eventually('the payload is deleted after the run', async () => (await stores.payloads.get(info.id)) === undefined);
    });

    it('stores.transaction(): nothing before the commit, enqueued once when it resolved; a failed transaction enqueues nothing', async function () {
      await tasks.pauseQueue({ name: HELD });
      const order = env.firestore.collection(`${stores.collections.tasks}Orders`).doc('o1');
      let id = '';
      await stores.transaction(async (tx) => {
        id = (await app.deferred.defer('count', ['tx'], { transaction: tx, queue: 'held' })).id;
        // The runner adds the defer's writes after this function: it may still read.
        await tx.get(order);
        assert.equal(await app.deferred.getTask(id), undefined, 'nothing before the commit');
        tx.set(order, { paid: true });
      });
      assert.equal((await app.deferred.getTask(id))?.status, 'queued');
      assert.equal((await held()).length, 1, 'enqueued once, before transaction() resolved');

      await assert.rejects(
        stores.transaction(async (tx) => {
          id = (await app.deferred.defer('count', ['rolled back'], { transaction: tx, queue: 'held' })).id;
          throw new Error('payment declined');
        }),
        /payment declined/,
      );
      assert.equal(await app.deferred.getTask(id), undefined);
      assert.equal((await held()).length, 1, 'still one task');
      await tasks.resumeQueue({ name: HELD });
      await app.deferred.drain({ timeoutMs: 20_000 });
      assert.deepEqual(runs, [['tx']]);
    });

    it("the user's own firestore.runTransaction: the relay enqueues once the commit reads back; a failed one enqueues nothing", async function () {
      await tasks.pauseQueue({ name: HELD });
      const order = env.firestore.collection(`${stores.collections.tasks}Orders`).doc('o2');
      let id = '';
      await assert.rejects(
        env.firestore.runTransaction(async (tx) => {
          id = (await app.deferred.defer('count', ['rolled back'], { transaction: tx, queue: 'held' })).id;
          throw new Error('payment declined');
        }),
        /payment declined/,
      );
      const failed = id;
      await env.firestore.runTransaction(async (tx) => {
        await tx.get(order);
        id = (await app.deferred.defer('count', ['own tx'], { transaction: tx, queue: 'held' })).id;
        assert.equal(await app.deferred.getTask(id), undefined, 'nothing before the commit');
        tx.set(order, { paid: true });
      });
      await eventually('the relay enqueued the committed defer', async () => (await held()).length === 1);
      assert.equal((await app.deferred.getTask(id))?.status, 'queued');
      assert.equal(await app.deferred.getTask(failed), undefined);
      await tasks.resumeQueue({ name: HELD });
      await app.deferred.drain({ timeoutMs: 20_000 });
      assert.deepEqual(runs, [['own tx']]);
    });

    it('contention makes the client run a function again: each transaction enqueues one task, from the attempt that committed', async function () {
      await tasks.pauseQueue({ name: HELD });
      const x = env.firestore.collection(`${stores.collections.tasks}Stock`).doc('x');
      const y = env.firestore.collection(`${stores.collections.tasks}Stock`).doc('y');
      let aHasX!: () => void;
      let bHasY!: () => void;
      const aHoldsX = new Promise<void>((resolve) => (aHasX = resolve));
      const bHoldsY = new Promise<void>((resolve) => (bHasY = resolve));
      const ids: Record<'a' | 'b', string[]> = { a: [], b: [] };
      const attempts = { a: 0, b: 0 };
      // Each reads its own document, then the other's: ours locks reads exclusively (the second reads
      // deadlock), Google's shares them (the commits deadlock). Either way one attempt is aborted.
      const run = (name: 'a' | 'b', mine: typeof x, theirs: typeof x, signal: () => void, wait: Promise<void>) =>
        env.firestore.runTransaction(async (tx) => {
          attempts[name] += 1;
          const first = attempts[name] === 1;
          await tx.get(mine);
          if (first) {
            signal();
            await wait;
          }
          await tx.get(theirs);
          ids[name].push((await app.deferred.defer('count', [`${name} ${ids[name].length + 1}`], { transaction: tx, queue: 'held' })).id);
          tx.set(mine, { by: name });
        });
      await Promise.all([run('a', x, y, aHasX, bHoldsY), run('b', y, x, bHasY, aHoldsX)]);
      // Whether an attempt is aborted is the emulator's timing (a loaded Google emulator has let both
      // through); what is ours: each transaction enqueues one task, from the attempt that committed.
      assert.ok(attempts.a >= 1 && attempts.b >= 1, `the functions ran ${attempts.a} and ${attempts.b} time(s)`);
      await eventually('both committed defers enqueued', async () => (await held()).length === 2);
      for (const attempts of [ids.a, ids.b]) {
        for (const id of attempts.slice(0, -1)) assert.equal(await app.deferred.getTask(id), undefined, 'no record from an attempt that did not commit');
      }
      await tasks.resumeQueue({ name: HELD });
      await app.deferred.drain({ timeoutMs: 20_000 });
      assert.deepEqual(runs.map(([label]) => label).sort(), [`a ${ids.a.length}`, `b ${ids.b.length}`]);
      assert.equal((await held()).length, 0);
    });

    it('cancel: a cancelled task is acknowledged without running', async function () {
      await tasks.pauseQueue({ name: HELD });
      const info = await app.deferred.defer('count', ['cancelled'], { queue: 'held' });
      assert.equal((await app.deferred.cancel(info.id))?.status, 'cancelled');
      await tasks.resumeQueue({ name: HELD });
      await app.deferred.drain({ timeoutMs: 20_000 });
      assert.deepEqual(runs, []);
    });
  });

  describe(`outbox sweeper on Firestore (enqueue cut after the commit)${label}`, function () {
    this.timeout(120_000);
    let env: FirestoreForTests;
    let emulator: EmulatorHandle;
    let transport: ReturnType<typeof cuttingTransport>;
    let stores: FirestoreStores;
    let app: TestApp;
    const runsByN = new Map<number, number>();

    before(async function () {
      env = await firestoreForTests(backend ? { backend } : {});
      emulator = await startEmulator({ port: 0 });
      transport = cuttingTransport(new CloudTasksTransport({ client: createEmulatorClient(emulator), projectId: 'local-project', location: 'us-central1' }));
      const serviceAccountEmail = 'tasks@local-project.iam.gserviceaccount.com';
      stores = firestoreStores({ firestore: env.firestore, collectionPrefix: uniquePrefix(env) });
      app = await startApp(
        'express',
        {
          stores,
          transport,
          queues: [{ name: 'default' }],
          auth: { mode: 'oidc', serviceAccountEmail, jwks: emulator.jwks as never },
          target: { serviceAccountEmail },
        },
        (d) => d.task('once', (n: number) => void runsByN.set(n, (runsByN.get(n) ?? 0) + 1)),
      );
    });
    after(async function () {
      await app?.close();
      await transport?.close();
      await emulator?.stop();
      if (env?.external) await env.clear();
      await env?.stop();
    });

    it('100 commits whose enqueue was cut (80 through stores.transaction, 20 relayed): the sweeper delivers each task exactly once', async function () {
      const ids: string[] = [];
      for (let n = 0; n < 100; n += 1) {
        transport.cutNext = 1;
        const work = async (tx: Transaction) => void ids.push((await app.deferred.defer('once', [n], { transaction: tx })).id);
        if (n < 80) await stores.transaction(work);
        else {
          await env.firestore.runTransaction(work);
          await eventually('the relay tried to enqueue', async () => transport.cutNext === 0);
        }
      }
      assert.equal(transport.cutNext, 0, 'every enqueue after a commit was attempted, and cut');
      await app.deferred.drain({ timeoutMs: 10_000 });
      assert.equal(runsByN.size, 0, 'nothing ran: every enqueue was cut');
      // Two sweepers racing (two instances behind Cloud Scheduler) still make one task each.
      await Promise.all([app.deferred.sweepOutbox({ graceMs: 0 }), app.deferred.sweepOutbox({ graceMs: 0 })]);
      await app.deferred.drain({ timeoutMs: 60_000 });
      for (const id of ids) assert.equal((await app.deferred.getTask(id))?.status, 'succeeded');
      assert.equal(runsByN.size, 100);
      assert.ok(
        [...runsByN.values()].every((count) => count === 1),
        'each ran exactly once',
      );
      assert.deepEqual(await app.deferred.sweepOutbox({ graceMs: 0 }), { enqueued: 0 }, 'the outbox is empty');
    });
  });
}
